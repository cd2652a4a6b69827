"""Ancestral and predictive sampling from an ARM in one `tf.function` while-loop.

[1, sec. 2.1-2.3, Algorithms 1 and 2]. With Gumbel noise eps fixed up front (the Gumbel-max
trick [2]), sampling is the deterministic map

    g(x, eps)_i = argmax_c (mu_ic(x_<i) + eps_ic)                           [1, eq. 4-5]

whose unique fixed point x = g(x, eps) is the ancestral sample (the map is strictly triangular).
Predictive sampling [1, Algorithm 1] keeps, per example, the length n of the valid prefix. Each
iteration

  1. forecasts the variables from n on (`tfps.forecast`), keeping x_<n and the evidence;
  2. runs the ARM once on that input: x' = g(x~, eps);
  3. accepts x'_n, ..., x'_m, where m is the first position >= n at which the forecast x~_m
     differs from x'_m (x'_m itself is valid: its conditioning x~_<m was). If no forecast is
     wrong, all d variables are valid.

So every accepted value was computed from valid conditioning only, and the result equals
ancestral sampling [1, eq. 2] for the same noise, bit for bit; forecasts change only how many ARM
calls are needed, between 1 and d. `ancestral` is the same loop accepting one variable per call.

Evidence (inpainting): observed variables keep their values, x = where(mask, evidence, g(x, eps)),
and are never counted as forecasts; the remaining variables are sampled from the model given them.

Scheduling (`sample_scheduled`, `tfps.scheduling`): N samples run through B batch slots, a slot
taking the next pending sample, with a fresh state, as soon as its sample is done, so the batch no
longer waits for its slowest image [1, sec. 4.1]. Both loops (`tfps.sampling_loop`) share one
ARM-call step, whose per-example counters make a sample's trajectory independent of when it
entered the batch. This module holds the public API: `PredictiveSampler` (checks, method table,
the compiled `tf.function`s), `SampleResult`, `sampler_for_model`.

Shapes: noise `[B, H, W, C, K]`, images `[B, H, W, C]`, d = H * W * C, flattened in raster order
over (h, w) then channel. Any ARM event shape (`tfps.arms`: a sequence `(L,)` or `(L, C)`) runs
in its canonical image layout (`tfps.events.canonical_shape`); the sampler takes noise and
evidence and returns results in the event shape.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Chris J. Maddison, Daniel Tarlow, Tom Minka. A* Sampling. In NeurIPS, 2014.
"""

import functools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps import arms, events, sampling_loop, scheduling
from tfps import forecast as forecast_lib
from tfps import incremental as incremental_lib
from tfps import noise as noise_lib

ANCESTRAL = "ancestral"
ANCESTRAL_CACHED = "ancestral_cached"
ANCESTRAL_METHODS = (ANCESTRAL, ANCESTRAL_CACHED)  # one variable per call


class SampleResult(NamedTuple):
    """What a sampler returns.

    samples: int32 `[B, H, W, C]` (`[B, *event_shape]` in general).
    arm_calls: int32 scalar, ARM forward passes for the whole batch.
    arm_calls_per_example: int32 `[B]`, the passes each example needed before it was complete.
    converged_at: int32 `[B, H, W, C]`, the ARM call (1-based) from which the ARM output at that
      variable never changed again [1, Figure 6].
    accepted_at: int32 `[B, H, W, C]`, the call in which the variable joined the valid prefix
      (it became final); converged_at <= accepted_at.
    forecast_mistakes: bool `[B, H, W, C]`, variables whose forecast was found wrong
      [1, Figures 3-4].
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
      event_shape: the shape of one example in noise, evidence and results (default
        `image_shape`); `image_shape` must be its canonical layout (`tfps.events`).
      incremental_arm: optional `tfps.incremental.WindowArm` of the same ARM: every method then
        makes incremental calls (a window of rows per example), same samples.
      cached_ancestral_arm: optional `tfps.incremental.WindowArm` of the same ARM: adds the
        method `ancestral_cached` (ancestral sampling computing one window per call).
    """

    def __init__(
        self,
        arm,
        image_shape,
        num_categories,
        forecasters=None,
        jit_compile=False,
        event_shape=None,
        incremental_arm=None,
        cached_ancestral_arm=None,
    ):
        self.arm = arm
        self.image_shape = tuple(int(s) for s in image_shape)
        self.event_shape = self.image_shape if event_shape is None else tuple(event_shape)
        if events.canonical_shape(self.event_shape) != self.image_shape:
            raise ValueError(
                f"image_shape {self.image_shape} is not the canonical layout of event shape "
                f"{self.event_shape} ({events.canonical_shape(self.event_shape)})"
            )
        self.num_categories = int(num_categories)
        self.num_variables = int(np.prod(self.image_shape))
        self.forecasters = {**forecast_lib.FORECASTERS, **(forecasters or {})}
        self.jit_compile = bool(jit_compile)
        self._compiled = {}
        self._loop = sampling_loop.ArmLoop(arm, self.image_shape, incremental_arm)
        self._cached_loop = cached_ancestral_arm and sampling_loop.ArmLoop(
            arm, self.image_shape, cached_ancestral_arm
        )

    @property
    def incremental(self):
        """Whether every method makes incremental ARM calls (`tfps.incremental`)."""
        return self._loop.incremental is not None

    @property
    def methods(self):
        """The sampling methods (exported, listed): `ancestral` first, then the forecasters."""
        return (ANCESTRAL,) + tuple(self.forecasters)

    @property
    def all_methods(self):
        """`methods` and, where the ARM takes row bands, the baseline `ancestral_cached`."""
        return self.methods + ((ANCESTRAL_CACHED,) if self._cached_loop else ())

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
            (int(batch_size),) + self.event_shape + (self.num_categories,), seed
        )
        return self.sample(noise, method, evidence, evidence_mask)

    def loop_function(self, method):
        """The `tf.function(noise, evidence, evidence_mask) -> SampleResult` for one method.

        Batch size is dynamic; use it to export or benchmark without the eager checks of `sample`.
        """
        self.check_method(method)
        return self._function(method)

    def sample_scheduled(self, noise, method="fpi", slots=32, evidence=None, evidence_mask=None):
        """Samples N examples through `slots` batch slots, refilling a slot as soon as its example
        is done (`tfps.scheduling`). Returns a `SampleResult` in sample order.

        Sample k is the same as `sample(noise)` gives for row k (the ancestral sample for noise k),
        whatever slot and moment it ran in. The fields are per sample, as for `sample`, except:
          arm_calls: ARM forward passes (of the B-slot batch) for all N samples.
          arm_calls_per_example: `[N]`, the calls during which sample k held a slot; equal to the
            calls it needs alone at batch size 1.
          converged_at, accepted_at: counted from the call in which sample k entered its slot (1).

        Args:
          noise: float32 `[N, H, W, C, K]` Gumbel noise, one row per sample, N >= 1.
          method: one of `self.methods`.
          slots: B >= 1, the batch size the ARM runs at; more slots than samples means N slots.
          evidence, evidence_mask: optional `[N, H, W, C]`, as for `sample`.
        """
        self.check_method(method)
        noise = self.check_noise(noise)
        slots = scheduling.check_count(slots, "slots")
        evidence, evidence_mask = self._check_evidence(evidence, evidence_mask, noise.shape[0])
        return self._scheduled_function(method)(
            noise, evidence, evidence_mask, tf.constant(slots, tf.int32)
        )

    def sample_scheduled_from_seed(
        self, seed, num_samples, slots=32, method="fpi", evidence=None, evidence_mask=None
    ):
        """`sample_scheduled` on `gumbel_noise((num_samples, H, W, C, K), seed)`: sample k has the
        noise row k, so the samples equal `sample_from_seed(seed, num_samples)`'s."""
        num_samples = scheduling.check_count(num_samples, "num_samples")
        slots = scheduling.check_count(slots, "slots")
        noise = noise_lib.gumbel_noise(
            (num_samples,) + self.event_shape + (self.num_categories,), seed
        )
        return self.sample_scheduled(noise, method, slots, evidence, evidence_mask)

    def scheduled_loop_function(self, method):
        """The `tf.function(noise, evidence, evidence_mask, slots) -> SampleResult` of
        `sample_scheduled` without its eager checks: N is dynamic, `slots` an int32 scalar tensor
        (clamped to [1, N])."""
        self.check_method(method)
        return self._scheduled_function(method)

    def sample_many_function(self, method):
        """`tf.function(seed int32 [2], num_samples int32 [], slots int32 []) -> SampleResult`:
        draws the noise of `sample_scheduled_from_seed` in the graph and samples without evidence.
        For serving (the export's `sample_many` signature); num_samples must be >= 1."""
        self.check_method(method)
        key = ("many", method)
        if key not in self._compiled:
            self._compiled[key] = tf.function(
                functools.partial(self._sample_many, method),
                autograph=False,
                input_signature=[
                    tf.TensorSpec([2], tf.int32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.int32),
                ],
            )
        return self._compiled[key]

    # ------------------------------------------------------------------------------ checks
    def check_method(self, method):
        if method not in self.all_methods:
            raise ValueError(
                f"unknown sampling method {method!r}; choose one of {list(self.all_methods)}"
            )

    def check_noise(self, noise):
        """Noise must be floating `[B, *event_shape, K]` with B >= 1; returns it as float32."""
        return events.check_noise(noise, self.event_shape + (self.num_categories,))

    def _check_evidence(self, evidence, evidence_mask, batch):
        return events.check_evidence(
            evidence, evidence_mask, batch, self.event_shape, self.num_categories
        )

    # ------------------------------------------------------------------------------- loop
    def _specs(self):
        """The input signature of noise, evidence and evidence_mask (batch size dynamic)."""
        batch = (None,) + self.event_shape
        return [
            tf.TensorSpec(batch + (self.num_categories,), tf.float32),
            tf.TensorSpec(batch, tf.int32),
            tf.TensorSpec(batch, tf.bool),
        ]

    def _function(self, method):
        if method not in self._compiled:
            # A partial (no __code__) gives each method's function its own retracing statistics.
            self._compiled[method] = tf.function(
                functools.partial(self._sample_loop, method),
                input_signature=self._specs(),
                jit_compile=self.jit_compile,
                autograph=False,
            )
        return self._compiled[method]

    def _canonical(self, noise, evidence, evidence_mask):
        """Noise, evidence and mask from the event shape to the loop's image layout."""
        return (
            events.reshape_batch(noise, self.image_shape + (self.num_categories,)),
            events.reshape_batch(evidence, self.image_shape),
            events.reshape_batch(evidence_mask, self.image_shape),
        )

    def _sample_loop(self, method, noise, evidence, evidence_mask):
        return self._result(
            *self._arm_loop(method).run(
                self._forecaster(method),
                method in ANCESTRAL_METHODS,
                *self._canonical(noise, evidence, evidence_mask),
            )
        )

    def _scheduled_function(self, method):
        key = ("scheduled", method)
        if key not in self._compiled:
            specs = self._specs()
            # The slot count fixes the loop's shapes, which XLA needs as constants: it enters as
            # the shape of the first slots' sample indices, computed outside the compiled loop.
            loop = tf.function(
                functools.partial(self._scheduled_loop, method),
                autograph=False,
                input_signature=specs + [tf.TensorSpec([None], tf.int32)],
                jit_compile=self.jit_compile,
            )
            self._compiled[key] = tf.function(
                functools.partial(self._scheduled_entry, loop),
                autograph=False,
                input_signature=specs + [tf.TensorSpec([], tf.int32)],
            )
        return self._compiled[key]

    @staticmethod
    def _scheduled_entry(loop, noise, evidence, evidence_mask, slots):
        num_slots = tf.minimum(tf.maximum(slots, 1), tf.shape(noise)[0])
        return loop(noise, evidence, evidence_mask, tf.range(num_slots))

    def _sample_many(self, method, seed, num_samples, slots):
        event = self.event_shape + (self.num_categories,)
        noise = noise_lib.gumbel_noise(tf.concat([[num_samples], event], axis=0), seed)
        noise = tf.ensure_shape(noise, (None,) + event)
        images = tf.concat([[num_samples], self.event_shape], axis=0)
        return self._scheduled_function(method)(
            noise, tf.zeros(images, tf.int32), tf.zeros(images, tf.bool), slots
        )

    def _scheduled_loop(self, method, noise, evidence, evidence_mask, first_samples):
        return self._result(
            *sampling_loop.run_scheduled(
                self._arm_loop(method),
                self._forecaster(method),
                method in ANCESTRAL_METHODS,
                *self._canonical(noise, evidence, evidence_mask),
                first_samples,
            )
        )

    # --------------------------------------------------------------------------- results
    def _arm_loop(self, method):
        return self._cached_loop if method == ANCESTRAL_CACHED else self._loop

    def _forecaster(self, method):
        if method in ANCESTRAL_METHODS:
            return forecast_lib.forecast_zeros
        return self.forecasters[method]

    def _result(self, calls, out):
        """A `SampleResult` from the calls and the `tfps.sampling_loop.Results` of a loop."""

        def image(t):
            return tf.reshape(t, (-1,) + self.event_shape)

        return SampleResult(
            samples=image(out.output),
            arm_calls=calls,
            arm_calls_per_example=out.calls_per_example,
            converged_at=image(out.changed_at),
            accepted_at=image(out.accepted_at),
            forecast_mistakes=image(out.mistakes),
            forecasts_checked=out.checked,
        )


def arm_from_model(model):
    """The canonical ARM callable (`tfps.arms.canonical_arm`) of a protocol model, in inference
    mode: x `[B, H, W, C]` -> `(logits, h)` in the canonical image layout."""
    arm = arms.canonical_arm(model)
    return lambda x: arm(x, training=False)


def sampler_for_model(
    model, forecasters=None, jit_compile=False, heads=None, arm=None, incremental=False
):
    """A `PredictiveSampler` for any ARM of the protocol (`tfps.arms`: a PixelCNN, a sequence
    model, your own), taking noise and evidence and returning results in its event shape.

    `heads`: trained forecasting heads (`load_trained(...)[1]["forecast_heads"]`) add their method,
    `learned` or `learned_unshared` (`tfps.forecast.learned_forecaster`); None adds nothing. A
    model without a representation h (`representation_channels` None) cannot have shared heads.
    `arm`: the canonical ARM callable to use (default `arm_from_model(model)`).
    `incremental`: every method makes incremental ARM calls; a PixelCNN only, as is the method
    `ancestral_cached` (`tfps.incremental.sampler_arms`).
    """
    forecasters = {**forecast_lib.learned_forecasters(heads), **(forecasters or {})}
    event_shape = arms.event_shape_of(model)
    return PredictiveSampler(
        arm or arm_from_model(model),
        events.canonical_shape(event_shape),
        model.num_categories,
        forecasters=forecasters,
        jit_compile=jit_compile,
        event_shape=event_shape,
        **incremental_lib.sampler_arms(model, incremental),
    )
