"""Any function or Keras model that returns logits, as an ARM every sampler takes.

`from_logits_fn(fn, event_shape, num_categories)` wraps `fn: x int32 [B, *event_shape] ->
logits [B, *event_shape, K]` in the ARM protocol (`tfps.sampling.protocol`): no representation h,
so every method but the learned one (which needs h) samples it, exactly as it samples a tfps
model, and `tfps.export_model` exports it. `fn` must be autoregressive in raster-then-channel
order (the logits at position i may depend only on x at positions < i): check it with
`tfps.check_autoregressive(LogitsFunctionARM(fn, ...), event_shape, K)` before trusting samples.
"""

import inspect
import math
import numbers

import keras
import tensorflow as tf

from tfps.sampling import events
from tfps.sampling import predictive as predictive_lib


class LogitsFunctionARM(tf.Module):
    """The ARM protocol around `fn: x -> logits` (a Keras model, a `tf.Module` or a function).

    `model(x, training=False) -> (logits, None)`. A Keras model or `tf.Module` given as `fn` is
    tracked, so its variables are saved with an export. `fn` is called as `fn(x,
    training=training)` when it accepts `training` (a Keras model does), else as `fn(x)`.
    """

    def __init__(self, fn, event_shape, num_categories, name=None):
        super().__init__(name=name)
        if not callable(fn):
            raise TypeError(f"fn must be callable (x -> logits), got {type(fn).__name__}")
        self.event_shape = events.check_event_shape(event_shape)
        integral = isinstance(num_categories, numbers.Integral) and not isinstance(
            num_categories, bool
        )
        if not integral or num_categories < 2:
            raise ValueError(f"num_categories must be an integer >= 2, got {num_categories!r}")
        self.num_categories = int(num_categories)
        self.num_variables = math.prod(self.event_shape)
        self.representation_channels = None
        self.fn = fn
        self._takes_training = _takes_training(fn)

    def __call__(self, x, training=False):
        logits = self.fn(x, training=training) if self._takes_training else self.fn(x)
        if isinstance(logits, (tuple, list)):
            raise ValueError(
                f"fn must return one logits tensor [B, *event_shape, K], got a "
                f"{type(logits).__name__} of {len(logits)}"
            )
        logits = tf.convert_to_tensor(logits)
        expected = (None,) + self.event_shape + (self.num_categories,)
        if not logits.shape.is_compatible_with(expected):
            raise ValueError(
                f"fn returned logits of shape {logits.shape}; expected [B, "
                f"{', '.join(map(str, self.event_shape))}, {self.num_categories}] "
                "(batch, event shape, categories)"
            )
        return tf.cast(logits, tf.float32), None

    def model_config(self):
        """The export metadata's `model` entry."""
        return {
            "arch": "logits_fn",
            "event_shape": list(self.event_shape),
            "num_categories": self.num_categories,
            "fn": getattr(self.fn, "name", None) or getattr(self.fn, "__name__", None),
        }


def _takes_training(fn):
    """Whether `fn` accepts a `training` keyword (a Keras layer or model always does)."""
    if isinstance(fn, keras.layers.Layer):
        return True
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "training" in parameters or any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def from_logits_fn(fn, event_shape, num_categories, **sampler_options):
    """A `PredictiveSampler` over `fn: x int32 [B, *event_shape] -> logits [B, *event_shape, K]`.

    Args:
      fn: a Keras model, `tf.Module` or function returning float logits; autoregressive in
        raster-then-channel order.
      event_shape: one example's shape: `(L,)`, `(L, C)` or `(H, W, C)`.
      num_categories: K, the number of values of each variable.
      **sampler_options: `forecasters`, `jit_compile` (`tfps.sampler_for_model`).

    Returns:
      A `PredictiveSampler`; its `.model` attribute is the wrapped ARM (for `tfps.export_model`).
    """
    model = LogitsFunctionARM(fn, event_shape, num_categories)
    sampler = predictive_lib.sampler_for_model(model, **sampler_options)
    sampler.model = model
    return sampler
