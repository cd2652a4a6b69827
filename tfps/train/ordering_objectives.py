"""Training objectives of a family of orderings (FARM [1, sec. 3]; the mixture as LMConv [2]).

A model with k orderings (`tfps.models.farm_made.OrderedMADE`: `model(x, ordering_index=i)` gives
the logits of every variable in ordering pi_i) has k conditionals p_i(x_j | x before j in pi_i)
for every variable j. The objectives, each in bits per dimension (per example, then averaged over
the batch, as `tfps.models.pixelcnn.bits_per_dim`):

- `mc`: Monte Carlo over the orderings [1, eq. 1]: one ordering per batch, drawn uniformly from
  the step's seed, and its negative log-likelihood -log2 p_i(x) / d. Its expectation is the mean
  of the k orderings' bpd.
- `ensemble`: FARM's evidence-weighted ensemble [1, eq. 2-3]: per variable j the average
  p_hat_j = sum_i w_ij p_i(. | x before j in pi_i) with w_ij proportional to the evidence ordering
  i has at j (the number of variables generated before j, its generation step) and
  sum_i w_ij = 1; the loss is -sum_j log2 p_hat_j(x_j) / d. FARM writes it for binary pixels; here
  it is the categorical cross-entropy of p_hat. p_hat is a product of per-variable averages, not
  a normalised joint likelihood of x: the loss is a training signal, not a bpd to compare.
- `ensemble_kl`: `ensemble` plus FARM's evidence-weighted KL [1, eq. 5],
  sum_j sum_i w_ij KL(p_i,j || p_hat_j) / d (in bits; over every category, where FARM's binary
  form scores the positive class only), which pulls each ordering's conditionals toward the
  ensemble.
- `mixture`: the mixture likelihood log mean_i p_i(x) (LMConv [2]: the log-mean-exp of the joint
  likelihoods), -log2(mean_i p_i(x)) / d: a normalised likelihood of x whose bpd is, per x, at
  least the best ordering's, at most it + log2(k) / d, and at most the orderings' mean.

`ordering_bpd` gives the per-example bpd of every ordering `[k, B]` and `mixture_bpd` the
mixture's `[B]`: the run reports both on its test split.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Ajay Jain, Pieter Abbeel, Deepak Pathak. Locally Masked Convolution for Autoregressive
     Models. In UAI, 2020.
"""

import math

import numpy as np
import tensorflow as tf

from tfps.models import pixelcnn

OBJECTIVES = ("mc", "ensemble", "ensemble_kl", "mixture")
_LN2 = math.log(2.0)


def check_objective(name):
    """`name` if it is one of `OBJECTIVES`, else ValueError naming them."""
    if name not in OBJECTIVES:
        raise ValueError(f"ordering_objective must be one of {', '.join(OBJECTIVES)}; got {name!r}")
    return name


def num_orderings(model):
    """k of a model with a family of orderings (`num_orderings`), 1 for any other ARM."""
    return int(getattr(model, "num_orderings", 1))


def evidence_weights(orderings):
    """FARM's w `[k, d]` [1, eq. 2]: w[i, j] proportional to the number of variables generated
    before j in ordering i, each column summing to 1 (uniform where no ordering has evidence)."""
    steps = np.stack([o.inverse for o in orderings]).astype(np.float64)  # [k, d]
    total = steps.sum(axis=0, keepdims=True)
    uniform = np.full_like(steps, 1.0 / len(orderings))
    return np.where(total > 0, steps / np.maximum(total, 1.0), uniform).astype(np.float32)


def _logits(model, x, training, index):
    """float32 logits `[B, *event_shape, K]` of ordering `index` (an int or an int32 tensor)."""
    return tf.cast(model(x, training=training, ordering_index=index)[0], tf.float32)


def _log_probs(model, x, training):
    """log-softmax of every ordering's logits `[k, B, d, K]` and x `[B, d]`."""
    batch, k = tf.shape(x)[0], int(model.num_categories)
    per_ordering = [
        tf.reshape(tf.nn.log_softmax(_logits(model, x, training, i)), [batch, -1, k])
        for i in range(num_orderings(model))
    ]
    return tf.stack(per_ordering), tf.reshape(x, [batch, -1])


def _of_x(log_probs, flat_x):
    """log p(x_j) `[..., B, d]` from log-probabilities `[..., B, d, K]`."""
    k = tf.shape(log_probs)[-1]
    return tf.reduce_sum(log_probs * tf.one_hot(flat_x, k, dtype=log_probs.dtype), axis=-1)


def ordering_bpd(model, x, training=False):
    """Per-example bits per dimension of x in every ordering: float32 `[k, B]`."""
    return tf.stack(
        [
            pixelcnn.bits_per_dim(_logits(model, x, training, i), x)
            for i in range(num_orderings(model))
        ]
    )


def _mixture(per_ordering, x):
    """-log2(mean_i p_i(x)) / d `[B]` from every ordering's bpd `[k, B]` (joints in nats:
    -bpd_i d ln 2)."""
    scale = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32) * _LN2  # d ln 2
    k = tf.cast(tf.shape(per_ordering)[0], tf.float32)
    return -(tf.reduce_logsumexp(-per_ordering * scale, axis=0) - tf.math.log(k)) / scale


def mixture_bpd(model, x, training=False):
    """Per-example -log2(mean_i p_i(x)) / d, the mixture of the k orderings [2]: float32 `[B]`."""
    return _mixture(ordering_bpd(model, x, training), x)


def _ensemble_terms(model, x, training):
    """Per example, in bits per dimension: FARM's ensemble loss [1, eq. 2-3] and its
    evidence-weighted KL [1, eq. 5], sum_j sum_i w_ij KL(p_ij || p_hat_j) / d: two float32 `[B]`."""
    log_probs, flat_x = _log_probs(model, x, training)  # [k, B, d, K]
    w = tf.constant(evidence_weights(model.orderings))[:, None, :, None]
    log_hat = tf.reduce_logsumexp(log_probs + tf.math.log(tf.maximum(w, 1e-30)), axis=0)
    bpd = -tf.reduce_mean(_of_x(log_hat, flat_x), axis=-1) / _LN2
    kl = tf.reduce_sum(tf.exp(log_probs) * (log_probs - log_hat[None]), axis=-1)  # [k, B, d]
    return bpd, tf.reduce_mean(tf.reduce_sum(w[..., 0] * kl, axis=0), axis=-1) / _LN2


def ensemble_bpd(model, x, training=False):
    """FARM's ensemble loss [1, eq. 2-3] per example, in bits per dimension: float32 `[B]`."""
    return _ensemble_terms(model, x, training)[0]


def ensemble_kl(model, x, training=False):
    """FARM's evidence-weighted KL [1, eq. 5] per example, in bits per dimension: float32 `[B]`."""
    return _ensemble_terms(model, x, training)[1]


def objective(model, x, name, seed=None, training=True):
    """`(loss, {term: value})`, batch means in bits per dimension, of objective `name` (see the
    module). `seed` (int32 `[2]`) draws the ordering of `mc`: ValueError without one (which
    would train one ordering only)."""
    check_objective(name)
    if name == "mc":
        if seed is None:
            raise ValueError(
                "the mc objective draws its ordering from the step's seed: pass seed (an int32 "
                "pair); without one it would train ordering 0 only"
            )
        index = tf.random.stateless_uniform([], seed, 0, num_orderings(model), dtype=tf.int32)
        bpd = tf.reduce_mean(pixelcnn.bits_per_dim(_logits(model, x, training, index), x))
        return bpd, {"bpd": bpd}
    if name == "mixture":
        bpd = tf.reduce_mean(mixture_bpd(model, x, training))
        return bpd, {"bpd": bpd}
    bpd, kl = (tf.reduce_mean(v) for v in _ensemble_terms(model, x, training))
    if name == "ensemble":
        return bpd, {"bpd": bpd}
    return bpd + kl, {"bpd": bpd, "ordering_kl": kl}


def make_eval_fn(model):
    """A traced `x [B, *event_shape] -> (per-example bpd summed over the batch, [k + 1]: every
    ordering's, then the mixture's; B)`, `training=False` (`metrics_from_means` names them)."""

    @tf.function(reduce_retracing=True)
    def eval_fn(x):
        bpd = ordering_bpd(model, x)  # one call per ordering serves both
        sums = tf.concat([tf.reduce_sum(bpd, axis=-1), tf.reduce_sum(_mixture(bpd, x))[None]], 0)
        return sums, tf.shape(x)[0]

    return eval_fn


def metrics_from_means(means):
    """`{bpd_ordering_<i>: ..., mixture_bpd: ...}` of `make_eval_fn`'s means over a split."""
    values = {f"bpd_ordering_{i}": float(v) for i, v in enumerate(means[:-1])}
    values["mixture_bpd"] = float(means[-1])
    return values
