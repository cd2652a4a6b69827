"""The training objective of an ARM as named loss terms [1, eq. 1, eq. 9].

`compute_loss` runs the model once and sums the weighted terms, each a function of the model
outputs `(x, logits, h)` in the canonical image layout (`tfps.sampling.events`): `BPD_TERM`, the
bits per dimension -log2 P_ARM(x) / d, and `forecast_loss_term`, eq. 9's KL of T forecasting
modules (`tfps.train.forecasting`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from tfps.models import pixelcnn
from tfps.sampling import events, protocol
from tfps.sampling import noise as noise_lib
from tfps.train import forecasting


@dataclasses.dataclass(frozen=True)
class ModelOutputs:
    """What a loss term sees, in the canonical image layout (`tfps.sampling.events`): x `[B, H, W,
    C]`, logits `[B, H, W, C, K]`, h `[B, H, W, F]` (a placeholder for a model without h), and a
    stateless seed (int32 `[2]`, different every training step) for terms that draw noise."""

    x: tf.Tensor
    logits: tf.Tensor
    h: tf.Tensor
    training: bool
    seed: tf.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One named term of the training objective: total = sum_t weight_t * fn_t(outputs).

    `fn(outputs: ModelOutputs) -> scalar`. `module` (optional, a Keras layer or tf.Module) holds the
    term's own trainable weights, e.g. a forecasting head on h; they are optimised with the model
    and checkpointed under `terms/<name>`.
    """

    name: str
    fn: Callable[[ModelOutputs], tf.Tensor]
    weight: float = 1.0
    module: tf.Module | None = None


def mean_bpd(outputs):
    """Mean over the batch of -log2 P_ARM(x) / d (eq. 1 in bits per dimension). -> scalar."""
    return tf.reduce_mean(pixelcnn.bits_per_dim(outputs.logits, outputs.x))


BPD_TERM = LossTerm("bpd", mean_bpd, 1.0)


def forecast_loss_term(heads, weight=0.01):
    """The `forecast` term: sum over the T modules of eq. 9's KL in bits (`forecast_kl`).

    Shared heads read h; unshared ones (Table 3 ablation) read x and posterior noise
    eps ~ p(eps | x) drawn from the detached ARM logits (Appendix B), a fresh draw every step.
    """

    def forecast_loss(outputs):
        noise = None
        if not heads.shares_representation:
            seed = outputs.seed if outputs.seed is not None else tf.constant([0, 0], tf.int32)
            noise = noise_lib.posterior_gumbel_noise(
                tf.stop_gradient(outputs.logits), outputs.x, seed
            )
        logits = forecasting.head_logits(heads, outputs.x, outputs.h, noise)
        return tf.reduce_sum(forecasting.forecast_kl(logits, outputs.logits))

    return LossTerm("forecast", forecast_loss, weight, heads)


def compute_loss(model, x, terms=(BPD_TERM,), training=True, seed=None):
    """Runs the model once on x `[B, *event_shape]` and evaluates every term. -> `(total,
    {name: value})`."""
    x = events.reshape_batch(x, events.canonical_shape(protocol.event_shape_of(model)))
    logits, h = protocol.canonical_arm(model)(x, training=training)
    logits = tf.cast(logits, tf.float32)  # float32 under a mixed-precision policy too
    outputs = ModelOutputs(x=x, logits=logits, h=h, training=training, seed=seed)
    values = {term.name: term.fn(outputs) for term in terms}
    total = tf.add_n([tf.cast(term.weight, tf.float32) * values[term.name] for term in terms])
    return total, values
