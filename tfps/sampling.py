"""Ancestral and predictive sampling from an ARM in one `tf.function` while-loop.

Seed 000, sections 2.1-2.3, Algorithms 1 and 2. With Gumbel noise eps fixed up front, sampling is
the deterministic map

    g(x, eps)_i = argmax_c (mu_ic(x_<i) + eps_ic)                                 (eq. 4-5)

whose unique fixed point x = g(x, eps) is the ancestral sample (the map is strictly triangular).
Predictive sampling (Algorithm 1) keeps, per example, the length n of the valid prefix. Each
iteration

  1. forecasts the variables from n on (`tfps.forecast`), keeping x_<n and the evidence;
  2. runs the ARM once on that input: x' = g(x~, eps);
  3. accepts x'_n, ..., x'_m, where m is the first position >= n at which the forecast x~_m
     differs from x'_m (x'_m itself is valid: its conditioning x~_<m was). If no forecast is
     wrong, all d variables are valid.

So every accepted value was computed from valid conditioning only, and the result equals
ancestral sampling (eq. 2) for the same noise, bit for bit; forecasts change only how many ARM calls
are needed, between 1 and d. `ancestral` is the same loop accepting one variable per call.

Evidence (inpainting): observed variables keep their values, x = where(mask, evidence, g(x, eps)),
and are never counted as forecasts; the remaining variables are sampled from the model given them.

Shapes: noise `[B, H, W, C, K]`, images `[B, H, W, C]`, d = H * W * C, flattened in raster order
over (h, w) then channel.
"""
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps import forecast as forecast_lib
from tfps import noise as noise_lib

ANCESTRAL = "ancestral"


class SampleResult(NamedTuple):
    """What a sampler returns.

    samples: int32 `[B, H, W, C]`.
    arm_calls: int32 scalar, ARM forward passes for the whole batch.
    arm_calls_per_example: int32 `[B]`, the passes each example needed before it was complete.
    converged_at: int32 `[B, H, W, C]`, the ARM call (1-based) from which the ARM output at that
      variable never changed again (Figure 6 of seed 000).
    accepted_at: int32 `[B, H, W, C]`, the call in which the variable joined the valid prefix
      (it became final); converged_at <= accepted_at.
    forecast_mistakes: bool `[B, H, W, C]`, variables whose forecast was found wrong (Figures 3-4).
    forecasts_checked: int32 `[B]`, how many forecasts were compared with the ARM's output (the
      denominator of forecast accuracy; `ancestral` checks none).
    """
    samples: tf.Tensor
    arm_calls: tf.Tensor
    arm_calls_per_example: tf.Tensor
    converged_at: tf.Tensor
    accepted_at: tf.Tensor
    forecast_mistakes: tf.Tensor
    forecasts_checked: tf.Tensor


class _LoopState(NamedTuple):
    calls: tf.Tensor            # scalar int32, ARM calls so far
    num_valid: tf.Tensor        # [B] int32, n
    output: tf.Tensor           # [B, d] int32, g(x~, eps) of the last call, evidence written in
    logits: tf.Tensor           # [B, H, W, C, K]
    representation: tf.Tensor   # [B, H, W, F]
    calls_per_example: tf.Tensor  # [B]
    changed_at: tf.Tensor       # [B, d]
    accepted_at: tf.Tensor      # [B, d]
    mistakes: tf.Tensor         # [B, d] bool
    checked: tf.Tensor          # [B]


class PredictiveSampler:
    """Samples from an ARM with ancestral or predictive sampling; all methods give the same sample.

    Args:
      arm: callable mapping x int32 `[B, H, W, C]` to `(logits [B, H, W, C, K], h [B, H, W, F])`,
        autoregressive in raster-then-channel order (e.g. `tfps.pixelcnn.PixelCNN` in inference
        mode). Logits are unnormalised; Gumbel-max only needs them up to a per-variable constant.
      image_shape: `(H, W, C)`.
      num_categories: K.
      forecasters: extra `{method: forecaster}` entries (e.g. learned forecasting heads) on top of
        `tfps.forecast.FORECASTERS`.
      jit_compile: compile the whole sampling loop with XLA.
    """

    def __init__(self, arm, image_shape, num_categories, forecasters=None, jit_compile=False):
        self.arm = arm
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_categories = int(num_categories)
        self.num_variables = int(np.prod(self.image_shape))
        self.forecasters = {**forecast_lib.FORECASTERS, **(forecasters or {})}
        self.jit_compile = bool(jit_compile)
        self._compiled = {}

    @property
    def methods(self):
        """Method names this sampler accepts: `ancestral` first, then the forecasters."""
        return (ANCESTRAL,) + tuple(self.forecasters)

    # ----------------------------------------------------------------------------------- API
    def sample(self, noise, method="fpi", evidence=None, evidence_mask=None):
        """Samples with the given noise. Returns a `SampleResult` of tensors.

        Args:
          noise: float32 `[B, H, W, C, K]` Gumbel noise (`tfps.noise.gumbel_noise`), B >= 1.
          method: one of `self.methods`.
          evidence: optional int `[B, H, W, C]` observed values in [0, K).
          evidence_mask: optional bool `[B, H, W, C]`, True where `evidence` is observed.
        """
        self.check_method(method)
        noise = self.check_noise(noise)
        batch = noise.shape[0]
        evidence, evidence_mask = self._check_evidence(evidence, evidence_mask, batch)
        return self._function(method)(noise, evidence, evidence_mask)

    def sample_from_seed(self, seed, batch_size, method="fpi", evidence=None, evidence_mask=None):
        """Draws Gumbel noise from `seed` (stateless) and samples `batch_size` images."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        noise = noise_lib.gumbel_noise(
            (int(batch_size),) + self.image_shape + (self.num_categories,), seed)
        return self.sample(noise, method, evidence, evidence_mask)

    def loop_function(self, method):
        """The `tf.function(noise, evidence, evidence_mask) -> SampleResult` for one method.

        Batch size is dynamic; use it to export or benchmark without the eager checks of `sample`.
        """
        self.check_method(method)
        return self._function(method)

    # ------------------------------------------------------------------------------ checks
    def check_method(self, method):
        if method not in self.methods:
            raise ValueError(f"unknown sampling method {method!r}; choose one of {list(self.methods)}")

    def check_noise(self, noise):
        """Noise must be floating `[B, H, W, C, K]` with B >= 1; returns it as float32."""
        noise = tf.convert_to_tensor(noise)
        expected = self.image_shape + (self.num_categories,)
        if not noise.dtype.is_floating:
            raise ValueError(f"noise must be a float tensor, got dtype {noise.dtype.name}")
        if noise.shape.rank != 5 or tuple(noise.shape[1:]) != expected:
            raise ValueError(f"noise must have shape [batch, {', '.join(map(str, expected))}] "
                             f"(batch, height, width, channels, categories), got {noise.shape.as_list()}")
        if noise.shape[0] is not None and noise.shape[0] < 1:
            raise ValueError("noise must hold at least one example (batch size >= 1)")
        return tf.cast(noise, tf.float32)

    def _check_evidence(self, evidence, evidence_mask, batch):
        from tfps.pixelcnn import validate_images  # local: keeps sampling usable with any ARM
        shape = (batch,) + self.image_shape
        if evidence is None and evidence_mask is None:
            return tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool)
        if evidence is None or evidence_mask is None:
            raise ValueError("evidence and evidence_mask must be given together")
        evidence = validate_images(evidence, self.image_shape, self.num_categories, "evidence")
        evidence_mask = tf.convert_to_tensor(evidence_mask)
        if evidence_mask.dtype != tf.bool:
            raise ValueError(f"evidence_mask must be bool, got dtype {evidence_mask.dtype.name}")
        if tuple(evidence.shape) != shape or tuple(evidence_mask.shape) != shape:
            raise ValueError(f"evidence and evidence_mask must have shape {list(shape)}, got "
                             f"{evidence.shape.as_list()} and {evidence_mask.shape.as_list()}")
        return evidence, evidence_mask

    # ------------------------------------------------------------------------------- loop
    def _function(self, method):
        if method not in self._compiled:
            spec = tf.TensorSpec((None,) + self.image_shape, tf.int32)
            signature = [tf.TensorSpec((None,) + self.image_shape + (self.num_categories,), tf.float32),
                         spec, tf.TensorSpec(spec.shape, tf.bool)]
            self._compiled[method] = tf.function(
                lambda noise, evidence, mask: self._sample_loop(method, noise, evidence, mask),
                input_signature=signature, jit_compile=self.jit_compile, autograph=False)
        return self._compiled[method]

    def _sample_loop(self, method, noise, evidence, evidence_mask):
        d = self.num_variables
        batch = tf.shape(noise)[0]
        flat_shape = tf.stack([batch, d])
        evidence = tf.reshape(evidence, flat_shape)
        observed = tf.reshape(evidence_mask, flat_shape)
        positions = tf.range(d)[None, :]
        ancestral = method == ANCESTRAL
        forecaster = forecast_lib.forecast_zeros if ancestral else self.forecasters[method]

        def step(state, forecast_fn):
            """One ARM call (Algorithm 1's loop body) on the state's forecasts."""
            n = state.num_valid
            active = n < d
            context = forecast_lib.ForecastContext(state.output, state.logits, state.representation,
                                                   n, noise)
            forecast = tf.where(positions < n[:, None], state.output, forecast_fn(context))
            x_in = tf.where(observed, evidence, forecast)
            logits, h = self.arm(tf.reshape(x_in, tf.shape(evidence_mask)))
            logits = tf.cast(logits, tf.float32)
            output = tf.argmax(logits + noise, axis=-1, output_type=tf.int32)
            output = tf.where(observed, evidence, tf.reshape(output, flat_shape))

            # Free variables from n on; the first wrong forecast among them is the last accepted.
            free = (positions >= n[:, None]) & ~observed
            wrong = free if ancestral else free & tf.not_equal(output, x_in)
            any_wrong = tf.reduce_any(wrong, axis=1)
            first_wrong = tf.argmax(tf.cast(wrong, tf.int32), axis=1, output_type=tf.int32)
            new_n = tf.where(any_wrong, first_wrong + 1, d)
            # Observed variables right after the accepted ones are valid too: skip to the next free.
            free_after = ~observed & (positions >= new_n[:, None])
            new_n = tf.where(tf.reduce_any(free_after, axis=1),
                             tf.argmax(tf.cast(free_after, tf.int32), axis=1, output_type=tf.int32), d)
            new_n = tf.where(active, new_n, n)

            calls = state.calls + 1
            active_2d = active[:, None]
            newly_accepted = (positions >= n[:, None]) & (positions < new_n[:, None])
            checked_here = tf.reduce_sum(tf.cast(newly_accepted & ~observed, tf.int32), axis=1)
            mistake_here = (positions == first_wrong[:, None]) & any_wrong[:, None] & active_2d
            changed = tf.not_equal(output, state.output) & active_2d
            return _LoopState(
                calls=calls,
                num_valid=new_n,
                output=tf.where(active_2d, output, state.output),
                logits=logits,
                representation=h,
                calls_per_example=state.calls_per_example + tf.cast(active, tf.int32),
                changed_at=tf.where(changed, calls, state.changed_at),
                accepted_at=tf.where(newly_accepted, calls, state.accepted_at),
                mistakes=state.mistakes if ancestral else state.mistakes | mistake_here,
                checked=state.checked if ancestral else state.checked + checked_here,
            )

        zeros = tf.zeros(flat_shape, tf.int32)
        initial = _LoopState(
            calls=tf.constant(0), num_valid=tf.zeros([batch], tf.int32),
            output=tf.where(observed, evidence, zeros),
            logits=tf.zeros_like(noise), representation=tf.zeros([batch, 1, 1, 1]),
            calls_per_example=tf.zeros([batch], tf.int32), changed_at=tf.ones(flat_shape, tf.int32),
            accepted_at=zeros, mistakes=tf.zeros(flat_shape, tf.bool),
            checked=tf.zeros([batch], tf.int32))
        # The first call has nothing to forecast from (no h yet): forecast zeros, as the paper does.
        first = step(initial, forecast_lib.forecast_zeros)
        first = first._replace(changed_at=tf.ones(flat_shape, tf.int32))
        final = tf.while_loop(
            cond=lambda state: tf.reduce_any(state.num_valid < d),
            body=lambda state: (step(state, forecaster),),
            loop_vars=(first,), maximum_iterations=d - 1)[0]

        image = lambda t: tf.reshape(t, tf.shape(evidence_mask))
        return SampleResult(
            samples=image(final.output), arm_calls=final.calls,
            arm_calls_per_example=final.calls_per_example,
            converged_at=image(final.changed_at), accepted_at=image(final.accepted_at),
            forecast_mistakes=image(final.mistakes), forecasts_checked=final.checked)


def arm_from_model(model):
    """The ARM callable of a Keras model returning `(logits, h)`, in inference mode."""
    return lambda x: model(x, training=False)


def sampler_for_model(model, forecasters=None, jit_compile=False):
    """A `PredictiveSampler` for a `tfps.pixelcnn.PixelCNN` (or a model with the same attributes)."""
    return PredictiveSampler(arm_from_model(model), model.image_shape, model.num_categories,
                             forecasters=forecasters, jit_compile=jit_compile)
