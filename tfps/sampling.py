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

Scheduling (`sample_scheduled`, `tfps.scheduling`): N samples run through B batch slots, a slot
taking the next pending sample, with a fresh state, as soon as its sample is done, so the batch no
longer waits for its slowest image (section 4.1). Both loops share one ARM-call step (`_step`),
whose per-example counters make a sample's trajectory independent of when it entered the batch.

Shapes: noise `[B, H, W, C, K]`, images `[B, H, W, C]`, d = H * W * C, flattened in raster order
over (h, w) then channel.
"""
import functools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps import forecast as forecast_lib
from tfps import noise as noise_lib
from tfps import scheduling

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


class _Slots(NamedTuple):
    """The B slots of the scheduled loop (`tfps.scheduling`)."""
    state: _LoopState           # rows are slots
    sample: tf.Tensor           # [B] int32, the sample each slot holds; N when empty
    noise: tf.Tensor            # [B, H, W, C, K], that sample's noise
    evidence: tf.Tensor         # [B, d] int32
    observed: tf.Tensor         # [B, d] bool


class _Finished(NamedTuple):
    """Per-sample results of the scheduled loop, `[N + 1, ...]` (the last row is a dummy)."""
    output: tf.Tensor
    calls_per_example: tf.Tensor
    changed_at: tf.Tensor
    accepted_at: tf.Tensor
    mistakes: tf.Tensor
    checked: tf.Tensor


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
        return self._scheduled_function(method)(noise, evidence, evidence_mask,
                                                tf.constant(slots, tf.int32))

    def sample_scheduled_from_seed(self, seed, num_samples, slots=32, method="fpi", evidence=None,
                                   evidence_mask=None):
        """`sample_scheduled` on `gumbel_noise((num_samples, H, W, C, K), seed)`: sample k has the
        noise row k, so the samples equal `sample_from_seed(seed, num_samples)`'s."""
        num_samples = scheduling.check_count(num_samples, "num_samples")
        slots = scheduling.check_count(slots, "slots")
        noise = noise_lib.gumbel_noise(
            (num_samples,) + self.image_shape + (self.num_categories,), seed)
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
                functools.partial(self._sample_many, method), autograph=False, input_signature=[
                    tf.TensorSpec([2], tf.int32), tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.int32)])
        return self._compiled[key]

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
            # A partial (no __code__) gives each method's function its own retracing statistics.
            self._compiled[method] = tf.function(
                functools.partial(self._sample_loop, method),
                input_signature=signature, jit_compile=self.jit_compile, autograph=False)
        return self._compiled[method]

    def _sample_loop(self, method, noise, evidence, evidence_mask):
        d = self.num_variables
        batch = tf.shape(noise)[0]
        evidence = tf.reshape(evidence, [batch, d])
        observed = tf.reshape(evidence_mask, [batch, d])
        ancestral = method == ANCESTRAL
        step = lambda state, forecaster: self._step(state, forecaster, ancestral, noise, evidence,
                                                    observed)
        # The first call has nothing to forecast from (no h yet): forecast zeros, as the paper does.
        first = step(self._fresh_state(noise, evidence, observed), forecast_lib.forecast_zeros)
        final = tf.while_loop(
            cond=lambda state: tf.reduce_any(state.num_valid < d),
            body=lambda state: (step(state, self._forecaster(method)),),
            loop_vars=(first,), maximum_iterations=d - 1)[0]
        return self._result(final.calls, final.output, final.calls_per_example, final.changed_at,
                            final.accepted_at, final.mistakes, final.checked)

    def _scheduled_function(self, method):
        key = ("scheduled", method)
        if key not in self._compiled:
            noise_spec = tf.TensorSpec((None,) + self.image_shape + (self.num_categories,),
                                       tf.float32)
            image_spec = tf.TensorSpec((None,) + self.image_shape, tf.int32)
            mask_spec = tf.TensorSpec(image_spec.shape, tf.bool)
            # The slot count fixes the loop's shapes, which XLA needs as constants: it enters as
            # the shape of the first slots' sample indices, computed outside the compiled loop.
            loop = tf.function(
                functools.partial(self._scheduled_loop, method), autograph=False,
                input_signature=[noise_spec, image_spec, mask_spec, tf.TensorSpec([None], tf.int32)],
                jit_compile=self.jit_compile)
            self._compiled[key] = tf.function(
                functools.partial(self._scheduled_entry, loop), autograph=False,
                input_signature=[noise_spec, image_spec, mask_spec, tf.TensorSpec([], tf.int32)])
        return self._compiled[key]

    @staticmethod
    def _scheduled_entry(loop, noise, evidence, evidence_mask, slots):
        num_slots = tf.minimum(tf.maximum(slots, 1), tf.shape(noise)[0])
        return loop(noise, evidence, evidence_mask, tf.range(num_slots))

    def _sample_many(self, method, seed, num_samples, slots):
        event = self.image_shape + (self.num_categories,)
        noise = noise_lib.gumbel_noise(tf.concat([[num_samples], event], axis=0), seed)
        noise = tf.ensure_shape(noise, (None,) + event)
        images = tf.concat([[num_samples], self.image_shape], axis=0)
        return self._scheduled_function(method)(
            noise, tf.zeros(images, tf.int32), tf.zeros(images, tf.bool), slots)

    def _scheduled_loop(self, method, noise, evidence, evidence_mask, first_samples):
        """Predictive sampling of N samples in B = len(first_samples) slots (`tfps.scheduling`)."""
        d = self.num_variables
        num_samples = tf.shape(noise)[0]
        num_slots = tf.shape(first_samples)[0]
        evidence = tf.reshape(evidence, [num_samples, d])
        observed = tf.reshape(evidence_mask, [num_samples, d])
        ancestral = method == ANCESTRAL

        def slot_inputs(sample):
            rows = tf.minimum(sample, num_samples - 1)   # empty slots hold N: any valid row does
            return tf.gather(noise, rows), tf.gather(evidence, rows), tf.gather(observed, rows)

        def step(slots, forecaster):
            return slots._replace(state=self._step(slots.state, forecaster, ancestral, slots.noise,
                                                   slots.evidence, slots.observed))

        def retire_and_refill(slots, next_pending, finished_results):
            """Writes out the samples that are done and gives their slots the next pending ones."""
            state = slots.state
            done = (slots.sample < num_samples) & (state.num_valid >= d)

            def update():
                rows = tf.where(done, slots.sample, num_samples)
                results = _Finished(*(
                    scheduling.scatter_rows(target, rows, getattr(state, field))
                    for field, target in zip(_Finished._fields, finished_results)))
                sample, refilled, pending = scheduling.refill_slots(
                    slots.sample, done, next_pending, num_samples)
                new_inputs = slot_inputs(sample)
                fresh = self._fresh_state(*new_inputs, calls=state.calls,
                                          representation=state.representation)
                reset = _LoopState(*(
                    old if field == "calls" else scheduling.select_rows(refilled, new, old)
                    for field, new, old in zip(_LoopState._fields, fresh, state)))
                inputs = [scheduling.select_rows(refilled, new, old) for new, old in
                          zip(new_inputs, (slots.noise, slots.evidence, slots.observed))]
                return _Slots(reset, sample, *inputs), pending, results

            return tf.cond(tf.reduce_any(done), update,
                           lambda: (slots, next_pending, finished_results))

        initial_inputs = slot_inputs(first_samples)
        initial = _Slots(self._fresh_state(*initial_inputs), first_samples, *initial_inputs)
        rows = num_samples + 1
        finished = _Finished(
            output=tf.zeros([rows, d], tf.int32), calls_per_example=tf.zeros([rows], tf.int32),
            changed_at=tf.ones([rows, d], tf.int32), accepted_at=tf.zeros([rows, d], tf.int32),
            mistakes=tf.zeros([rows, d], tf.bool), checked=tf.zeros([rows], tf.int32))
        # The first call has nothing to forecast from: every slot forecasts zeros (see `_step` for
        # slots refilled later). It runs outside the loop because it fixes h's shape.
        first = retire_and_refill(step(initial, forecast_lib.forecast_zeros), num_slots, finished)
        # Every call moves each busy slot forward by >= 1 variable, so by the list-scheduling
        # bound (`tfps.scheduling`) the loop ends within ceil(N d / B) + d calls.
        bound = tf.cast(num_samples, tf.int64) * d // tf.cast(num_slots, tf.int64) + d + 1
        final_slots, _, results = tf.while_loop(
            cond=lambda slots, pending, results: tf.reduce_any(slots.sample < num_samples),
            body=lambda slots, pending, results: retire_and_refill(
                step(slots, self._forecaster(method)), pending, results),
            loop_vars=first,
            maximum_iterations=tf.cast(tf.minimum(bound, np.iinfo(np.int32).max), tf.int32))
        take = lambda t: t[:num_samples]
        return self._result(final_slots.state.calls, *(take(t) for t in results))

    # ------------------------------------------------------- one ARM call, shared by both loops
    def _forecaster(self, method):
        return forecast_lib.forecast_zeros if method == ANCESTRAL else self.forecasters[method]

    def _fresh_state(self, noise, evidence, observed, calls=None, representation=None):
        """The state of examples that have not been sampled yet: n = 0, no previous call.

        Args:
          noise: `[B, H, W, C, K]`; evidence, observed: `[B, d]`.
          calls: the global ARM call count to carry (default 0).
          representation: a tensor shaped like h to zero (default a `[B, 1, 1, 1]` placeholder:
            before the first call the sampler does not know h's shape).
        """
        batch = tf.shape(noise)[0]
        zeros = tf.zeros([batch, self.num_variables], tf.int32)
        return _LoopState(
            calls=tf.constant(0) if calls is None else calls,
            num_valid=tf.zeros([batch], tf.int32),
            output=tf.where(observed, evidence, zeros),
            logits=tf.zeros_like(noise),
            representation=(tf.zeros([batch, 1, 1, 1]) if representation is None
                            else tf.zeros_like(representation)),
            calls_per_example=tf.zeros([batch], tf.int32),
            changed_at=tf.ones_like(zeros), accepted_at=zeros,
            mistakes=tf.zeros_like(zeros, tf.bool), checked=tf.zeros([batch], tf.int32))

    def _step(self, state, forecaster, ancestral, noise, evidence, observed):
        """One ARM call (Algorithm 1's loop body) on the state's forecasts, for a whole batch.

        An example whose `calls_per_example` is 0 is fresh: its forecast is zeros whatever the
        forecaster (it has no previous call to forecast from). Counters (`changed_at`,
        `accepted_at`) are per example, 1-based from the example's own first call, so an example's
        trajectory does not depend on when it entered the batch. Examples with n = d are done and
        left unchanged (the ARM still sees them: the batch has a fixed shape).

        Args:
          state: `_LoopState` of B examples.
          forecaster: `ForecastContext -> [B, d]` forecasts.
          ancestral: accept one variable per call instead of checking forecasts.
          noise: `[B, H, W, C, K]`; evidence int32 `[B, d]`; observed bool `[B, d]`.
        """
        d = self.num_variables
        positions = tf.range(d)[None, :]
        n = state.num_valid
        active = n < d
        fresh = tf.equal(state.calls_per_example, 0)[:, None]
        context = forecast_lib.ForecastContext(state.output, state.logits, state.representation,
                                               n, noise)
        forecast = tf.where(fresh, 0, forecaster(context))
        forecast = tf.where(positions < n[:, None], state.output, forecast)
        x_in = tf.where(observed, evidence, forecast)
        logits, h = self.arm(tf.reshape(x_in, (-1,) + self.image_shape))
        logits = tf.cast(logits, tf.float32)
        output = tf.argmax(logits + noise, axis=-1, output_type=tf.int32)
        output = tf.where(observed, evidence, tf.reshape(output, tf.shape(evidence)))

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

        own_call = (state.calls_per_example + 1)[:, None]   # this call, counted per example
        active_2d = active[:, None]
        newly_accepted = (positions >= n[:, None]) & (positions < new_n[:, None])
        checked_here = tf.reduce_sum(tf.cast(newly_accepted & ~observed, tf.int32), axis=1)
        mistake_here = (positions == first_wrong[:, None]) & any_wrong[:, None] & active_2d
        # On an example's first call every output counts as changed (there was no output before).
        changed = (tf.not_equal(output, state.output) | fresh) & active_2d
        return _LoopState(
            calls=state.calls + 1,
            num_valid=new_n,
            output=tf.where(active_2d, output, state.output),
            logits=logits,
            representation=h,
            calls_per_example=state.calls_per_example + tf.cast(active, tf.int32),
            changed_at=tf.where(changed, own_call, state.changed_at),
            accepted_at=tf.where(newly_accepted, own_call, state.accepted_at),
            mistakes=state.mistakes if ancestral else state.mistakes | mistake_here,
            checked=state.checked if ancestral else state.checked + checked_here,
        )

    def _result(self, calls, output, calls_per_example, changed_at, accepted_at, mistakes,
                checked):
        """A `SampleResult` from flat `[B, d]` per-variable tensors."""
        image = lambda t: tf.reshape(t, (-1,) + self.image_shape)
        return SampleResult(
            samples=image(output), arm_calls=calls, arm_calls_per_example=calls_per_example,
            converged_at=image(changed_at), accepted_at=image(accepted_at),
            forecast_mistakes=image(mistakes), forecasts_checked=checked)


def arm_from_model(model):
    """The ARM callable of a Keras model returning `(logits, h)`, in inference mode."""
    return lambda x: model(x, training=False)


def sampler_for_model(model, forecasters=None, jit_compile=False, heads=None):
    """A `PredictiveSampler` for a `tfps.pixelcnn.PixelCNN` (or a model with the same attributes).

    `heads`: trained forecasting heads (`load_trained(...)[1]["forecast_heads"]`) add their method,
    `learned` or `learned_unshared` (`tfps.forecast.learned_forecaster`); None adds nothing.
    """
    forecasters = {**forecast_lib.learned_forecasters(heads), **(forecasters or {})}
    return PredictiveSampler(arm_from_model(model), model.image_shape, model.num_categories,
                             forecasters=forecasters, jit_compile=jit_compile)
