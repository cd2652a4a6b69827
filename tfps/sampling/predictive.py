"""Ancestral and predictive sampling from an ARM in one `tf.function` while-loop.

[1, sec. 2.1-2.3, Algorithms 1 and 2]. With Gumbel noise eps fixed up front (the Gumbel-max
trick [2]), sampling is the deterministic map

    g(x, eps)_i = argmax_c (mu_ic(x_<i) + eps_ic)                           [1, eq. 4-5]

whose unique fixed point x = g(x, eps) is the ancestral sample (the map is strictly triangular).
Predictive sampling [1, Algorithm 1] keeps, per example, the length n of the valid prefix. Each
iteration

  1. forecasts the variables from n on (`tfps.sampling.forecasters`), keeping x_<n and the evidence;
  2. runs the ARM once on that input: x' = g(x~, eps);
  3. accepts x'_n, ..., x'_m, where m is the first position >= n at which the forecast x~_m
     differs from x'_m (x'_m itself is valid: its conditioning x~_<m was). If no forecast is
     wrong, all d variables are valid.

So every accepted value was computed from valid conditioning only, and the result equals
ancestral sampling [1, eq. 2] for the same noise, bit for bit; forecasts change only how many ARM
calls are needed, between 1 and d. `ancestral` is the same loop accepting one variable per call.

Evidence (inpainting): observed variables keep their values, x = where(mask, evidence, g(x, eps)),
and are never counted as forecasts; the remaining variables are sampled from the model given them.

Scheduling (`sample_scheduled`, `tfps.sampling.slots`): N samples run through B batch slots, a slot
taking the next pending sample, with a fresh state, as soon as its sample is done, so the batch no
longer waits for its slowest image [1, sec. 4.1]. Both loops (`tfps.sampling.loops`) share one
ARM-call step, whose per-example counters make a sample's trajectory independent of when it
entered the batch. This module holds the public API: `PredictiveSampler` (its methods and input
checks), `SampleResult`, `sampler_for_model`; `tfps.sampling.methods` builds each method's
compiled `tf.function`s.

Shapes: noise `[B, H, W, C, K]`, images `[B, H, W, C]`, d = H * W * C, flattened in raster order
over (h, w) then channel. Any ARM event shape (`tfps.models.arms`: a sequence `(L,)` or `(L, C)`)
runs in its canonical image layout (`tfps.sampling.events.canonical_shape`); the sampler takes noise
and evidence and returns results in the event shape.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Chris J. Maddison, Daniel Tarlow, Tom Minka. A* Sampling. In NeurIPS, 2014.
"""

import numpy as np
import tensorflow as tf

from tfps.sampling import budget as budget_lib
from tfps.sampling import events, loops, ordered_view, protocol
from tfps.sampling import forecasters as forecast_lib
from tfps.sampling import incremental as incremental_lib
from tfps.sampling import methods as methods_lib
from tfps.sampling import noise as noise_lib
from tfps.sampling import slots as slots_lib

# The method names and the result type (`tfps.sampling.methods`), public here.
ANCESTRAL = methods_lib.ANCESTRAL
ANCESTRAL_CACHED = methods_lib.ANCESTRAL_CACHED
ANCESTRAL_METHODS = methods_lib.ANCESTRAL_METHODS
SampleResult = methods_lib.SampleResult


class PredictiveSampler:
    """Samples from an ARM with ancestral or predictive sampling; all methods give the same sample.

    Args:
      arm: callable mapping x int32 `[B, H, W, C]` to `(logits [B, H, W, C, K], h [B, H, W, F])`,
        autoregressive in raster-then-channel order (e.g. `tfps.models.pixelcnn.PixelCNN` in
        inference mode). Logits are unnormalised; Gumbel-max only needs them up to a per-variable
        constant.
      image_shape: `(H, W, C)`.
      num_categories: K.
      forecasters: extra `{method: forecaster}` entries (e.g. learned forecasting heads) on top of
        `tfps.sampling.forecasters.FORECASTERS`.
      jit_compile: compile the whole sampling loop with XLA.
      event_shape: the shape of one example in noise, evidence and results (default
        `image_shape`); `image_shape` must be its canonical layout (`tfps.sampling.events`).
      incremental_arm: optional `tfps.sampling.incremental.WindowArm` of the same ARM: every method
        then makes incremental calls (a window of rows per example), same samples.
      cached_ancestral_arm: optional cached ARM of the same ARM for ancestral sampling
        (`tfps.sampling.incremental.WindowArm` of a PixelCNN, `tfps.sampling.kv_cache.KeyValueArm`
        of a Transformer): adds the method `ancestral_cached`.
      ordering: the ordering (`tfps.sampling.ordered_view`) of the event's d variables in
        which `arm` generates them, for an `arm` over the ordered view
        (`tfps.sampling.ordered_view`; `image_shape` `(1, d, 1)`); None: the raster order.
        Noise, evidence and results stay in the event's x layout either way.
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
        ordering=None,
    ):
        self.arm = arm
        self.image_shape = tuple(int(s) for s in image_shape)
        self.event_shape = self.image_shape if event_shape is None else tuple(event_shape)
        self.ordering = ordering
        if ordering is not None:
            d = int(np.prod(self.event_shape))
            if len(ordering) != d or self.image_shape != events.canonical_shape((d,)):
                raise ValueError(
                    f"an ordering of the {d} variables of event shape {self.event_shape} is "
                    f"sampled through its ordered view, image shape {(1, d, 1)}; got an ordering "
                    f"of {len(ordering)} and image shape {self.image_shape}"
                )
        elif events.canonical_shape(self.event_shape) != self.image_shape:
            raise ValueError(
                f"image_shape {self.image_shape} is not the canonical layout of event shape "
                f"{self.event_shape} ({events.canonical_shape(self.event_shape)})"
            )
        self.num_categories = int(num_categories)
        self.num_variables = int(np.prod(self.image_shape))
        self.forecasters = {**forecast_lib.FORECASTERS, **(forecasters or {})}
        self.jit_compile = bool(jit_compile)
        self._functions = methods_lib.MethodFunctions(
            loops.ArmLoop(arm, self.image_shape, incremental_arm),
            cached_ancestral_arm and loops.ArmLoop(arm, self.image_shape, cached_ancestral_arm),
            self.forecasters,
            self.image_shape,
            self.event_shape,
            self.num_categories,
            self.jit_compile,
            ordering,
        )

    @property
    def incremental(self):
        """Whether every method makes incremental ARM calls (`tfps.sampling.incremental`)."""
        return self._functions.loop.incremental is not None

    @property
    def incremental_rows(self):
        """The rows of each incremental call's window (`tfps.sampling.incremental.WindowArm`),
        else None."""
        calls = self._functions.loop.incremental
        return None if calls is None else getattr(calls.arm, "window", None)

    @property
    def methods(self):
        """The sampling methods (exported, listed): `ancestral` first, then the forecasters."""
        return self._functions.methods

    @property
    def all_methods(self):
        """`methods` and, where the ARM has a cached ancestral ARM, the baseline
        `ancestral_cached`."""
        return self._functions.all_methods

    # ----------------------------------------------------------------------------------- API
    def sample(self, noise, method="fpi", evidence=None, evidence_mask=None):
        """Samples with the given noise. Returns a `SampleResult` of tensors.

        Args:
          noise: float32 `[B, H, W, C, K]` Gumbel noise (`tfps.sampling.noise.gumbel_noise`), B >=
          1. method: one of `self.all_methods`.
          evidence: optional int `[B, H, W, C]` observed values in [0, K).
          evidence_mask: optional bool `[B, H, W, C]`, True where `evidence` is observed.
        """
        self.check_method(method)
        noise = self.check_noise(noise)
        batch = noise.shape[0]
        evidence, evidence_mask = self._check_evidence(evidence, evidence_mask, batch)
        return complete(self._functions.batch_function(method)(noise, evidence, evidence_mask))

    def sample_from_seed(self, seed, batch_size, method="fpi", evidence=None, evidence_mask=None):
        """Draws Gumbel noise from `seed` (stateless) and samples `batch_size` images."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        noise = noise_lib.gumbel_noise(
            (int(batch_size),) + self.event_shape + (self.num_categories,), seed
        )
        return self.sample(noise, method, evidence, evidence_mask)

    def sample_within_budget(self, noise, method="fpi", max_calls=None, max_seconds=None):
        """Samples until every variable is final or the budget is spent (`tfps.sampling.budget`):
        at most `max_calls` ARM calls and `max_seconds` of wall time (the first call is always
        made; a call that starts in time may end after it). Returns `(result, prefix)`: prefix,
        int32 `[B]`, is how many variables in the ordering are final (those of the ancestral
        sample for the same noise, exactly); result is the `SampleResult` with `samples` 0 from
        there on and `accepted_at` 0 where a variable was not final. Never XLA-compiled. With an
        `ordering`, the prefix is of the variables in that ordering."""
        self.check_method(method)
        noise = self.check_noise(noise)
        max_calls, max_seconds = budget_lib.check_budget(max_calls, max_seconds)
        result = self._functions.budget_function(method)(
            noise, tf.constant(max_calls, tf.int32), tf.constant(max_seconds, tf.float64)
        )
        in_order = self._functions.generation_order
        prefix = budget_lib.finished_prefix(in_order(result.accepted_at))
        samples = budget_lib.keep_prefix(in_order(result.samples), prefix)
        return result._replace(samples=self._functions.x_layout(samples)), prefix

    def loop_function(self, method):
        """The `tf.function(noise, evidence, evidence_mask) -> SampleResult` for one method.

        Batch size is dynamic; use it to export or benchmark without the eager checks of `sample`.
        """
        self.check_method(method)
        return self._functions.batch_function(method)

    def budget_loop_function(self, method):
        """The `tf.function(noise, max_calls int32 [], max_seconds float64 []) -> SampleResult` of
        `sample_within_budget` without its eager checks and before the prefix is cut (`accepted_at`
        0 where a variable is not final); for exports."""
        self.check_method(method)
        return self._functions.budget_function(method)

    def sample_scheduled(self, noise, method="fpi", slots=32, evidence=None, evidence_mask=None):
        """Samples N examples through `slots` batch slots, refilling a slot as soon as its example
        is done (`tfps.sampling.slots`). Returns a `SampleResult` in sample order.

        Sample k is the same as `sample(noise)` gives for row k (the ancestral sample for noise k),
        whatever slot and moment it ran in. The fields are per sample, as for `sample`, except:
          arm_calls: ARM forward passes (of the B-slot batch) for all N samples.
          arm_calls_per_example: `[N]`, the calls during which sample k held a slot; equal to the
            calls it needs alone at batch size 1.
          converged_at, accepted_at: counted from the call in which sample k entered its slot (1).

        Args:
          noise: float32 `[N, H, W, C, K]` Gumbel noise, one row per sample, N >= 1.
          method: one of `self.all_methods`.
          slots: B >= 1, the batch size the ARM runs at; more slots than samples means N slots.
          evidence, evidence_mask: optional `[N, H, W, C]`, as for `sample`.
        """
        self.check_method(method)
        noise = self.check_noise(noise)
        slots = slots_lib.check_count(slots, "slots")
        evidence, evidence_mask = self._check_evidence(evidence, evidence_mask, noise.shape[0])
        return complete(
            self._functions.scheduled_function(method)(
                noise, evidence, evidence_mask, tf.constant(slots, tf.int32)
            )
        )

    def sample_scheduled_from_seed(
        self, seed, num_samples, slots=32, method="fpi", evidence=None, evidence_mask=None
    ):
        """`sample_scheduled` on `gumbel_noise((num_samples, H, W, C, K), seed)`: sample k has the
        noise row k, so the samples equal `sample_from_seed(seed, num_samples)`'s."""
        num_samples = slots_lib.check_count(num_samples, "num_samples")
        slots = slots_lib.check_count(slots, "slots")
        noise = noise_lib.gumbel_noise(
            (num_samples,) + self.event_shape + (self.num_categories,), seed
        )
        return self.sample_scheduled(noise, method, slots, evidence, evidence_mask)

    def scheduled_loop_function(self, method):
        """The `tf.function(noise, evidence, evidence_mask, slots) -> SampleResult` of
        `sample_scheduled` without its eager checks: N is dynamic, `slots` an int32 scalar tensor
        (clamped to [1, N])."""
        self.check_method(method)
        return self._functions.scheduled_function(method)

    def sample_many_function(self, method):
        """`tf.function(seed int32 [2], num_samples int32 [], slots int32 []) -> SampleResult`:
        draws the noise of `sample_scheduled_from_seed` in the graph and samples without evidence.
        For serving (the export's `sample_many` signature); num_samples must be >= 1."""
        self.check_method(method)
        return self._functions.sample_many_function(method)

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


class IncompleteSampleError(RuntimeError):
    """A sampling loop ended before accepting every variable (`complete`)."""


def complete(result):
    """`result` (a `SampleResult`) if every variable was accepted (`accepted_at >= 1`), else
    IncompleteSampleError: the loops stop after at most d calls, and an incremental ARM that does
    not make the needed position exact (`tfps.sampling.loops.ArmLoop.call_arm`) would leave
    variables unaccepted; the eager check runs after the (traced or XLA-compiled) loop returns."""
    if not tf.executing_eagerly():
        return result
    missing = np.asarray(result.accepted_at) < 1
    if missing.any():
        first = [int(i) for i in np.argwhere(missing)[0]]
        raise IncompleteSampleError(
            f"the sampling loop ended after {int(result.arm_calls)} ARM calls with "
            f"{int(missing.sum())} variables never accepted (the first: example {first[0]}, "
            f"position {first[1:]}): an incremental ARM must make the needed position exact"
        )
    return result


def arm_from_model(model):
    """The canonical ARM callable (`tfps.sampling.protocol.canonical_arm`) of a protocol model, in
    inference mode: x `[B, H, W, C]` -> `(logits, h)` in the canonical image layout.

    A `tf.function`: every method's loop calls the one traced graph of the model (per input
    shape) instead of tracing the model anew, which made a sampler's first call of 5 methods on a
    3-scale PixelCNN 40% faster on 2 CPU cores. Under a name scope (a Keras layer named `_x`
    cannot open a root name scope in a graph)."""
    arm = protocol.canonical_arm(model)

    @tf.function
    def call(x):
        with tf.name_scope("arm"):
            return arm(x, training=False)

    return call


def sampler_for_model(
    model, forecasters=None, jit_compile=False, heads=None, arm=None, incremental=False
):
    """A `PredictiveSampler` for any ARM of the protocol (`tfps.models.arms`: a PixelCNN, a sequence
    model, your own), taking noise and evidence and returning results in its event shape.

    `heads`: trained forecasting heads (`load_trained(...)[1]["forecast_heads"]`) add their method,
    `learned` or `learned_unshared` (`tfps.sampling.forecasters.learned_forecaster`); None adds
    nothing. A model without a representation h (`representation_channels` None) cannot have shared
    heads. `arm`: the canonical ARM callable to use (default `arm_from_model(model)`).
    `incremental`: every method makes incremental ARM calls; a PixelCNN only, as is the method
    `ancestral_cached` (`tfps.sampling.incremental.sampler_arms`).

    A family of orderings (`model.orderings`) is sampled in its first ordering, the one `model(x)`
    is autoregressive in: through its ordered view (`tfps.sampling.ordered_view`) when that is not
    the raster order, with noise, evidence and results in x layout (`sampler.ordering` names it).
    Learned heads and incremental calls need the raster order there (ValueError), and `arm`, if
    given, must be the canonical ARM of `ordered_view.GenerationOrderView(model, ordering)`.
    """
    event_shape = protocol.event_shape_of(model)
    ordering = ordered_view.sampling_order(model)
    if ordering is not None:
        if heads or incremental:
            raise ValueError(
                f"{type(model).__name__} samples in its first ordering, {ordering.name or 'not'} "
                "raster order, through its ordered view: learned heads and incremental calls need "
                "a family whose first ordering is the natural one (tl_rows)"
            )
        arm_model = ordered_view.GenerationOrderView(model, ordering)
        options = {"ordering": ordering}
    else:
        arm_model = model
        options = incremental_lib.sampler_arms(model, incremental)
        forecasters = {**forecast_lib.learned_forecasters(heads), **(forecasters or {})}
    return PredictiveSampler(
        arm or arm_from_model(arm_model),
        events.canonical_shape(protocol.event_shape_of(arm_model)),
        model.num_categories,
        forecasters=forecasters,
        jit_compile=jit_compile,
        event_shape=event_shape,
        **options,
    )
