"""Forecasting functions F_i for predictive sampling (seed 000, sections 2.2-2.4).

A forecaster proposes values for the not-yet-valid variables x_i, x_{i+1}, ... (eq. 3):

    x~_i, x~_{i+1}, ... = F_i(x, h, eps)                                          (eq. 6)

It sees only what is known when the forecast is made: the ARM's previous reparametrized output
(valid before position n, a forecast after it), its logits and representation h from that call,
the noise eps, and n itself. The sampler keeps the valid prefix and the evidence in place, so a
forecaster may return any values for positions < n.

Every forecaster maps a `ForecastContext` to int32 forecasts `[B, d]` over the flattened
raster-then-channel ordering. Which forecaster is used changes only the number of ARM calls,
never the sample: the sampler accepts an output only once its whole conditioning is valid.
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
    """Forecast zeros: x~_{i+t} = 0 for all t (the paper's first baseline, Table 1)."""
    return tf.zeros_like(context.previous_output)


def forecast_last(context):
    """Predict last: x~_{i+t} = x_{i-1}, the last valid value (Table 1); 0 when nothing is valid.

    With C > 1 channels the last valid value is the previous variable in raster-then-channel
    order, which may be another channel of the same pixel.
    """
    n = context.num_valid
    last = tf.gather(context.previous_output, tf.maximum(n - 1, 0), batch_dims=1)
    last = tf.where(n > 0, last, tf.zeros_like(last))
    return tf.broadcast_to(last[:, None], tf.shape(context.previous_output))


def forecast_fixed_point(context):
    """ARM fixed-point iteration (eq. 7-8, Algorithm 2): the previous ARM output is the forecast.

    x^(n+1) = g(x^(n), eps): the forecast for x_{i+t} is g_{i+t}(x_<i+t, eps) computed from the
    previous iteration's input.
    """
    return context.previous_output


def forecast_fixed_point_argmax(context):
    """Fixed-point iteration without reparametrization (Table 3 ablation).

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
