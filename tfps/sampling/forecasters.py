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
(`tfps.models.heads.ForecastHeads`, or `UnsharedForecastHeads` for the ablation of [1, Table 3]):

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


def anchor_logits(logits, num_valid, channels):
    """The T forecasting distributions for the variables n .. n+T-1, given n valid variables.

    Reads slot r = (n - 1) % C of pixel a = (n - 1) // C (see `tfps.models.heads.ForecastHeads`):
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
