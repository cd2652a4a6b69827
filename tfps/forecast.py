"""Forecasting functions F_i for predictive sampling [1, sec. 2.2-2.4].

A forecaster proposes values for the not-yet-valid variables x_i, x_{i+1}, ... [1, eq. 3]:

    x~_i, x~_{i+1}, ... = F_i(x, h, eps)                                      [1, eq. 6]

It sees only what is known when the forecast is made: the ARM's previous reparametrized output
(valid before position n, a forecast after it), its logits and representation h from that call,
the noise eps, and n itself. The sampler keeps the valid prefix and the evidence in place, so a
forecaster may return any values for positions < n.

Every forecaster maps a `ForecastContext` to int32 forecasts `[B, d]` over the flattened
raster-then-channel ordering. Which forecaster is used changes only the number of ARM calls,
never the sample: the sampler accepts an output only once its whole conditioning is valid.

Learned forecasting [1, sec. 2.4] adds trained modules P_F^(t), t = 0..T-1
(`tfps.heads.ForecastHeads`, or `UnsharedForecastHeads` for the ablation of [1, Table 3]):

    x~_{n+t} = argmax_c (mu~_{n,t,c}(h_<n) + eps_{n+t,c})                           [1, eq. 10]

for the T variables after the valid prefix, and the ARM's own previous outputs (fixed-point
iteration) beyond them. They are trained with

    sum_t mean_i KL[P_ARM(x_{i+t} | x_<i+t) || P_F^(t)(x_{i+t} | x_<i)]              [1, eq. 9]

(`forecast_kl`), the ARM side detached, next to the likelihood. `forecast_accuracy` measures on
data how often each forecaster would agree with the ARM, using posterior noise [1, Appendix B].

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

from typing import NamedTuple

import tensorflow as tf

from tfps import arms, events
from tfps import heads as heads_lib
from tfps import noise as noise_lib


class ForecastContext(NamedTuple):
    """What a forecaster may look at, all from the previous ARM call.

    previous_output: int32 `[B, d]`, g(x, eps) = argmax(logits + eps) of the previous call, with
      evidence written in; positions < num_valid are final.
    previous_logits: float32 `[B, H, W, C, K]`, the logits mu of that call.
    representation: float32 `[B, H, W, F]`, the ARM's h of that call.
    num_valid: int32 `[B]`, n: how many leading variables are final.
    noise: float32 `[B, H, W, C, K]`, the Gumbel noise eps of the sample.
    """

    previous_output: tf.Tensor
    previous_logits: tf.Tensor
    representation: tf.Tensor
    num_valid: tf.Tensor
    noise: tf.Tensor


def forecast_zeros(context):
    """Forecast zeros: x~_{i+t} = 0 for all t (the first baseline of [1, Table 1])."""
    return tf.zeros_like(context.previous_output)


def forecast_last(context):
    """Predict last: x~_{i+t} = x_{i-1}, the last valid value [1, Table 1]; 0 when nothing is valid.

    With C > 1 channels the last valid value is the previous variable in raster-then-channel
    order, which may be another channel of the same pixel.
    """
    n = context.num_valid
    last = tf.gather(context.previous_output, tf.maximum(n - 1, 0), batch_dims=1)
    last = tf.where(n > 0, last, tf.zeros_like(last))
    return tf.broadcast_to(last[:, None], tf.shape(context.previous_output))


def forecast_fixed_point(context):
    """ARM fixed-point iteration [1, eq. 7-8, Algorithm 2]: the previous ARM output is the forecast.

    x^(n+1) = g(x^(n), eps): the forecast for x_{i+t} is g_{i+t}(x_<i+t, eps) computed from the
    previous iteration's input.
    """
    return context.previous_output


def forecast_fixed_point_argmax(context):
    """Fixed-point iteration without reparametrization (the ablation of [1, Table 3]).

    Forecasts the most likely value argmax_c mu_{i,c} of the previous call, leaving the noise out
    of the forecast. The sampler still samples with the noise, so the result is exact; only the
    forecasts are worse.
    """
    argmax = tf.argmax(context.previous_logits, axis=-1, output_type=tf.int32)
    return tf.reshape(argmax, tf.shape(context.previous_output))


# Forecasters that need nothing but the ARM itself, by sampler method name.
FORECASTERS = {
    "zeros": forecast_zeros,
    "last": forecast_last,
    "fpi": forecast_fixed_point,
    "fpi_argmax": forecast_fixed_point_argmax,
}


# ----------------------------------------------------------------------------- learned forecasting


def make_heads(
    image_shape, num_categories, steps, filters, shared=True, representation_channels=None
):
    """Built forecasting heads for an ARM on `image_shape` `(H, W, C)` with K categories.

    `shared`: `tfps.heads.ForecastHeads` on the ARM's h of `representation_channels` channels
    (method `learned`); otherwise `tfps.heads.UnsharedForecastHeads` on x and the noise (method
    `learned_unshared`). `filters`: the heads' width ([1, Table 4]: the ARM's). T must be in [1, d).
    """
    h, w, c = (int(s) for s in image_shape)
    if not 1 <= int(steps) < h * w * c:
        raise ValueError(f"forecast steps T must be in [1, d) = [1, {h * w * c}), got {steps}")
    if shared:
        if representation_channels is None:
            raise ValueError("shared forecasting heads need the ARM's representation_channels")
        heads = heads_lib.ForecastHeads(steps, c, num_categories, filters, name="forecast_heads")
        heads.build((None, h, w, int(representation_channels)))
    else:
        heads = heads_lib.UnsharedForecastHeads(
            steps, (h, w, c), num_categories, filters, name="forecast_heads"
        )
        heads.build((None, h, w, c), (None, h, w, c, num_categories))
    return heads


def heads_for_model(model, steps, filters=None, shared=True):
    """`make_heads` for an ARM of the protocol (`tfps.arms`) in its canonical image layout
    (`tfps.events`; a sequence is one row); width: the ARM's representation's by default."""
    if shared and model.representation_channels is None:
        raise ValueError(
            f"{type(model).__name__} returns no representation h, so it cannot have shared "
            "forecasting heads; train unshared ones (forecast.shared=false) or none"
        )
    return make_heads(
        events.canonical_shape(arms.event_shape_of(model)),
        model.num_categories,
        steps,
        filters or model.representation_channels,
        shared,
        model.representation_channels,
    )


def head_logits(heads, x, h, noise):
    """The heads' logits `[B, H, W, T, C, K]`: from h (shared) or from x and noise (unshared)."""
    if heads.shares_representation:
        return heads(h)
    return heads(x, noise)


def anchor_logits(logits, num_valid, channels):
    """The T forecasting distributions for the variables n .. n+T-1, given n valid variables.

    Reads slot r = (n - 1) % C of pixel a = (n - 1) // C (see `tfps.heads.ForecastHeads`):
    `[B, H, W, T, C, K]`, n `[B]` -> `[B, T, K]`. n = 0 (nothing valid) reads pixel 0, slot 0;
    the sampler never uses that forecast (the first call forecasts zeros).
    """
    shape = tf.shape(logits)
    flat = tf.reshape(logits, tf.concat([shape[:1], [shape[1] * shape[2]], shape[3:]], axis=0))
    pixel, slot = _anchor(num_valid, channels)
    return _slot(tf.gather(flat, pixel, axis=1, batch_dims=1), slot)


def _anchor(num_valid, channels):
    """(pixel a, slot r) of the last valid variable n - 1 (pixel 0, slot 0 for n = 0)."""
    last = tf.maximum(num_valid - 1, 0)
    return last // channels, last % channels


def _slot(at_anchor, slot):
    """`[B, T, C, K]` logits at the anchor pixel -> `[B, T, K]` of slot r `[B]`."""
    return tf.gather(at_anchor, slot, axis=2, batch_dims=1)


def learned_forecaster(heads, reparametrized=True):
    """The forecaster of learned forecasting [1, eq. 10] for `PredictiveSampler(forecasters=...)`.

    For the T variables after the valid prefix n: x~_{n+t} = argmax_c(mu~_{n,t,c} + eps_{n+t,c})
    from the heads' logits on the previous call's h (or, unshared, on its output and the noise);
    beyond them, the previous ARM output (fixed-point iteration, as in [1, sec. 4.1]).
    `reparametrized=False` leaves eps out of the forecast (the most likely value under P_F).
    """

    def forecast(context):
        output = context.previous_output
        batch, d = tf.shape(output)[0], tf.shape(output)[1]
        image_shape = tf.shape(context.noise)[1:4]
        channels = image_shape[2]
        if heads.shares_representation:  # the heads at the anchor pixel only
            pixel, slot = _anchor(context.num_valid, channels)
            logits = _slot(heads.at_pixels(context.representation, pixel), slot)  # [B, T, K]
        else:  # the unshared heads' stack on x needs the whole image
            x = tf.reshape(output, tf.concat([[batch], image_shape], axis=0))
            logits = anchor_logits(heads(x, context.noise), context.num_valid, channels)
        steps = tf.shape(logits)[1]
        targets = context.num_valid[:, None] + tf.range(steps)[None, :]  # [B, T]
        if reparametrized:
            noise = tf.reshape(context.noise, [batch, d, -1])
            logits = logits + tf.gather(noise, tf.minimum(targets, d - 1), batch_dims=1)
        values = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [B, T]
        offset = tf.range(d)[None, :] - context.num_valid[:, None]  # [B, d]
        in_window = (offset >= 0) & (offset < steps)
        placed = tf.gather(values, tf.clip_by_value(offset, 0, steps - 1), batch_dims=1)
        return tf.where(in_window, placed, output)

    return forecast


def _by_target(logits):
    """`[B, H, W, T, C, K]` -> `[B, T, d, K]` indexed by the valid-prefix length i - 1 = a*C + r."""
    shape = tf.shape(logits)
    flat = tf.reshape(logits, tf.concat([shape[:1], [shape[1] * shape[2]], shape[3:]], axis=0))
    flat = tf.transpose(flat, [0, 2, 1, 3, 4])  # [B, T, HW, C, K]
    return tf.reshape(flat, tf.concat([shape[:1], shape[3:4], [-1], shape[5:]], axis=0))


def forecast_kl(logits, arm_logits):
    """Eq. 9 per module: `[T]` mean over i and the batch of, in bits,

        KL[P_ARM(x_{i+t} | x_<i+t) || P_F^(t)(x_{i+t} | h_<i)],   1 <= i, i + t < d,

    with the ARM side detached (gradients reach only P_F, and through it h). `logits`: the heads'
    `[B, H, W, T, C, K]`; `arm_logits`: the ARM's `[B, H, W, C, K]`. Positions are raster-then-
    channel; entry j = i - 1 of module t forecasts variable j + 1 + t (`tfps.heads.ForecastHeads`).
    """
    steps = logits.shape[3]
    forecasts = tf.nn.log_softmax(_by_target(logits), axis=-1)  # [B, T, d, K]
    shape = tf.shape(arm_logits)
    arm = tf.reshape(arm_logits, tf.concat([shape[:1], [-1], shape[4:]], axis=0))
    arm = tf.stop_gradient(tf.nn.log_softmax(arm, axis=-1))  # [B, d, K]
    d = tf.shape(arm)[1]
    kls = []
    for t in range(steps):
        target = arm[:, 1 + t :]
        forecast = forecasts[:, t, : d - 1 - t]
        kls.append(tf.reduce_mean(tf.reduce_sum(tf.exp(target) * (target - forecast), axis=-1)))
    return tf.stack(kls) / tf.math.log(2.0)


def learned_accuracy(logits, target, noise):
    """`[T]`: fraction of (example, i) with argmax(mu~_{i,t} + eps_{i+t}) == target_{i+t}.

    `logits` `[B, H, W, T, C, K]`; `target` int `[B, H, W, C]`, the ARM's reparametrized output
    g(x, eps) (x itself under posterior noise); `noise` `[B, H, W, C, K]`. Every valid-prefix
    length 1 <= i < d - t counts once: the forecast the sampler would make there.
    """
    steps = logits.shape[3]
    by_target = _by_target(logits)
    batch = tf.shape(target)[0]
    target = tf.reshape(target, [batch, -1])
    noise = tf.reshape(noise, [batch, tf.shape(target)[1], -1])
    d = tf.shape(target)[1]
    accuracies = []
    for t in range(steps):
        forecast = tf.argmax(
            by_target[:, t, : d - 1 - t] + noise[:, 1 + t :], axis=-1, output_type=tf.int32
        )
        accuracies.append(
            tf.reduce_mean(tf.cast(tf.equal(forecast, target[:, 1 + t :]), tf.float32))
        )
    return tf.stack(accuracies)


def fixed_point_accuracy(arm, x, arm_logits, noise, steps, seed):
    """`[steps]`: how often fixed-point iteration's forecast is right, after one wrong input.

    The situation fpi forecasts in: the previous ARM call had a correct input before position
    j = i - 1 and a wrong forecast at j. For each example a position j is drawn uniformly from
    [0, d - 2], x_j is replaced by its runner-up value argmax_{c != x_j}(mu_jc + eps_jc) (for
    K = 2, the only wrong value), and the ARM runs once on that input; fpi's forecast for
    x_{i+t} is that call's output g_{i+t}. Returns the fraction of examples (with i + t < d)
    where it equals the target g(x, eps)_{i+t} (x under posterior noise). For t = 0 this is
    exactly fpi's situation; for t > 0 it is optimistic, as the true input after j stays in place.

    Args:
      arm: `x -> (logits, h)` in inference mode.
      x: int `[B, H, W, C]` with `g(x, eps) = x` (posterior noise); `arm_logits` = arm(x)'s logits.
      noise: `[B, H, W, C, K]`. steps: how many t. seed: stateless seed for j.
    """
    batch = tf.shape(x)[0]
    image_shape = tf.shape(x)[1:]
    flat = tf.reshape(tf.cast(x, tf.int32), [batch, -1])
    d = tf.shape(flat)[1]
    k = tf.shape(noise)[-1]
    perturbed = tf.reshape(arm_logits + noise, [batch, d, k])
    wrong = tf.random.stateless_uniform([batch], noise_lib.as_seed(seed), 0, d - 1, tf.int32)
    at_wrong = tf.gather(perturbed, wrong, batch_dims=1)  # [B, K]
    own = tf.one_hot(tf.gather(flat, wrong, batch_dims=1), k, on_value=True, off_value=False)
    runner_up = tf.argmax(
        tf.where(own, tf.fill(tf.shape(at_wrong), -float("inf")), at_wrong),
        axis=-1,
        output_type=tf.int32,
    )
    corrupted = tf.where(tf.equal(tf.range(d)[None, :], wrong[:, None]), runner_up[:, None], flat)
    logits, _ = arm(tf.reshape(corrupted, tf.concat([[batch], image_shape], axis=0)))
    output = tf.reshape(tf.argmax(logits + noise, axis=-1, output_type=tf.int32), [batch, d])
    accuracies = []
    for t in range(steps):
        position = wrong + 1 + t
        valid = tf.cast(position < d, tf.float32)
        position = tf.minimum(position, d - 1)
        right = tf.cast(
            tf.equal(
                tf.gather(output, position, batch_dims=1), tf.gather(flat, position, batch_dims=1)
            ),
            tf.float32,
        )
        accuracies.append(tf.reduce_sum(right * valid) / tf.maximum(tf.reduce_sum(valid), 1.0))
    return tf.stack(accuracies)


def forecast_accuracy(model, heads, x, seed, steps=None):
    """What the user watches during training: `{name: accuracy}` on a batch of data x.

    Noise eps ~ p(eps | x) is exact posterior noise (`tfps.noise.posterior_gumbel_noise`), so the
    ARM's reparametrized output g(x, eps) is x itself and (x, eps) is distributed as a sample with
    its noise ([1, eq. 12], when the model fits the data). Keys: `learned_t{t}` per module
    (`learned_accuracy`), `learned` their mean, `fpi_t{t}` and `fpi` the same for fixed-point
    iteration (`fixed_point_accuracy`), over `steps` (default the heads' T, or 1 without heads).
    """
    seed = noise_lib.as_seed(seed)
    noise_seed, position_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    x = tf.cast(x, tf.int32)
    arm_logits, h = model(x, training=False)
    noise = noise_lib.posterior_gumbel_noise(arm_logits, x, noise_seed)
    steps = steps or (heads.steps if heads is not None else 1)
    results = {}
    if heads is not None:
        learned = learned_accuracy(head_logits(heads, x, h, noise), x, noise)
        results.update({f"learned_t{t}": learned[t] for t in range(heads.steps)})
        results["learned"] = tf.reduce_mean(learned)
    fpi = fixed_point_accuracy(
        lambda inputs: model(inputs, training=False), x, arm_logits, noise, steps, position_seed
    )
    results.update({f"fpi_t{t}": fpi[t] for t in range(steps)})
    results["fpi"] = tf.reduce_mean(fpi)
    return results


def learned_forecasters(heads):
    """`{method: forecaster}` for trained heads; {} for None. Methods: `learned` (or
    `learned_unshared`), [1, eq. 10], and `learned_argmax` (or `learned_unshared_argmax`), the
    heads' most likely values without the noise (the ablation of reparametrization,
    [1, sec. 4.3])."""
    if heads is None:
        return {}
    return {
        heads.method: learned_forecaster(heads),
        f"{heads.method}_argmax": learned_forecaster(heads, reparametrized=False),
    }
