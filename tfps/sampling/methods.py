"""The sampler's methods: which ARM loop and forecaster each runs, and their compiled functions.

A method is `ancestral` (one variable per ARM call [1, eq. 2]), a forecaster's name (predictive
sampling [1, Algorithm 1]) or `ancestral_cached`, ancestral sampling through an ARM that caches
what earlier calls computed (`tfps.sampling.incremental.WindowArm` for a PixelCNN,
`tfps.sampling.kv_cache.KeyValueArm` for a Transformer). `MethodFunctions` builds, once per method,
the `tf.function`s of `tfps.sampling.predictive.PredictiveSampler`: the batch loop, the scheduled
loop (`tfps.sampling.slots`) and `sample_many` for serving, all around the loops of
`tfps.sampling.loops`, and turns their flat results into a `SampleResult` in the event shape
(`tfps.sampling.events`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

import functools
from typing import NamedTuple

import tensorflow as tf

from tfps.sampling import events, loops, ordered_view
from tfps.sampling import forecasters as forecast_lib
from tfps.sampling import noise as noise_lib

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


class MethodFunctions:
    """The compiled sampling functions of each method, built on first use and kept.

    Args:
      loop: the `tfps.sampling.loops.ArmLoop` of every method but `ancestral_cached`.
      cached_loop: the `ArmLoop` around a cached ancestral ARM, or None (no `ancestral_cached`).
      forecasters: `{method: forecaster}` of the predictive methods.
      image_shape: the loops' canonical `(H, W, C)`; event_shape: the shape of one example in
        noise, evidence and results; num_categories: K.
      jit_compile: compile the loops with XLA.
      ordering: the ordering (`tfps.sampling.ordered_view`) in which the loops' ARM generates
        the event's variables, or None for the raster order. With an ordering the loops run on
        the ordered view (`tfps.sampling.ordered_view`, image layout `(1, d, 1)`): noise and
        evidence enter permuted to generation order and every result leaves in x layout.
    """

    def __init__(
        self,
        loop,
        cached_loop,
        forecasters,
        image_shape,
        event_shape,
        num_categories,
        jit_compile,
        ordering=None,
    ):
        self.loop = loop
        self.cached_loop = cached_loop
        self.forecasters = forecasters
        self.image_shape = tuple(image_shape)
        self.event_shape = tuple(event_shape)
        self.num_categories = int(num_categories)
        self.jit_compile = bool(jit_compile)
        self.ordering = ordering
        self._compiled = {}

    @property
    def methods(self):
        """The methods every sampler exports: `ancestral` first, then the forecasters."""
        return (ANCESTRAL,) + tuple(self.forecasters)

    @property
    def all_methods(self):
        """`methods` and, with a cached loop, the baseline `ancestral_cached`."""
        return self.methods + ((ANCESTRAL_CACHED,) if self.cached_loop else ())

    def arm_loop(self, method):
        """The `ArmLoop` that runs `method`."""
        return self.cached_loop if method == ANCESTRAL_CACHED else self.loop

    def forecaster(self, method):
        """`method`'s forecaster; the ancestral methods forecast zeros (and check nothing)."""
        if method in ANCESTRAL_METHODS:
            return forecast_lib.forecast_zeros
        return self.forecasters[method]

    # ------------------------------------------------------------------------ the functions
    def specs(self):
        """The input signature of noise, evidence and evidence_mask (batch size dynamic)."""
        batch = (None,) + self.event_shape
        return [
            tf.TensorSpec(batch + (self.num_categories,), tf.float32),
            tf.TensorSpec(batch, tf.int32),
            tf.TensorSpec(batch, tf.bool),
        ]

    def batch_function(self, method):
        """`tf.function(noise, evidence, evidence_mask) -> SampleResult` of one batch."""
        if method not in self._compiled:
            # A partial (no __code__) gives each method's function its own retracing statistics.
            self._compiled[method] = tf.function(
                functools.partial(self._batch_loop, method),
                input_signature=self.specs(),
                jit_compile=self.jit_compile,
                autograph=False,
            )
        return self._compiled[method]

    def scheduled_function(self, method):
        """`tf.function(noise, evidence, evidence_mask, slots int32 []) -> SampleResult` of the
        scheduled loop (slots clamped to [1, N])."""
        key = ("scheduled", method)
        if key not in self._compiled:
            specs = self.specs()
            # The slot count fixes the loop's shapes, which XLA needs as constants: it enters as
            # the shape of the first slots' sample indices, computed outside the compiled loop.
            loop = tf.function(
                functools.partial(self._scheduled_loop, method),
                autograph=False,
                input_signature=specs + [tf.TensorSpec([None], tf.int32)],
                jit_compile=self.jit_compile,
            )
            self._compiled[key] = tf.function(
                functools.partial(_scheduled_entry, loop),
                autograph=False,
                input_signature=specs + [tf.TensorSpec([], tf.int32)],
            )
        return self._compiled[key]

    def sample_many_function(self, method):
        """`tf.function(seed int32 [2], num_samples int32 [], slots int32 []) -> SampleResult`:
        the scheduled loop on noise drawn in the graph, without evidence."""
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

    def budget_function(self, method):
        """`tf.function(noise, max_calls int32 [], max_seconds float64 []) -> SampleResult`: the
        batch loop, without evidence, stopped when the budget (`tfps.sampling.loops.Budget`) is
        spent; `accepted_at` is 0 at the variables not final by then. Not XLA-compiled whatever
        `jit_compile` says: the loop reads the clock."""
        key = ("budget", method)
        if key not in self._compiled:
            self._compiled[key] = tf.function(
                functools.partial(self._budget_loop, method),
                input_signature=self.specs()[:1]
                + [tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64)],
                autograph=False,
            )
        return self._compiled[key]

    # ----------------------------------------------------------------------- their bodies
    def generation_order(self, t, *trailing):
        """t `[B, *event_shape, *trailing]` in x layout -> `[B, d, *trailing]`, the variables in
        the order the loops generate them (`tfps.sampling.ordered_view.to_generation_order`)."""
        return ordered_view.to_generation_order(self.ordering, t, *trailing)

    def x_layout(self, t):
        """t `[B, ...]` of d variables per example in generation order (the loops' image layout
        or `[B, d]`) -> `[B, *event_shape]` in x layout (`ordered_view.to_x_layout`)."""
        return ordered_view.to_x_layout(self.ordering, t, self.event_shape)

    def _canonical(self, noise, evidence, evidence_mask):
        """Noise, evidence and mask from the event shape to the loop's image layout."""
        return (
            events.reshape_batch(
                self.generation_order(noise, self.num_categories),
                self.image_shape + (self.num_categories,),
            ),
            events.reshape_batch(self.generation_order(evidence), self.image_shape),
            events.reshape_batch(self.generation_order(evidence_mask), self.image_shape),
        )

    def _batch_loop(self, method, noise, evidence, evidence_mask):
        return self.result(
            *self.arm_loop(method).run(
                self.forecaster(method),
                method in ANCESTRAL_METHODS,
                *self._canonical(noise, evidence, evidence_mask),
            )
        )

    def _budget_loop(self, method, noise, max_calls, max_seconds):
        nothing = tf.zeros(tf.shape(noise)[:-1], tf.int32)
        noise, evidence, mask = self._canonical(noise, nothing, tf.cast(nothing, tf.bool))
        return self.result(
            *self.arm_loop(method).run(
                self.forecaster(method),
                method in ANCESTRAL_METHODS,
                noise,
                evidence,
                mask,
                budget=loops.Budget(max_calls, max_seconds),
            )
        )

    def _scheduled_loop(self, method, noise, evidence, evidence_mask, first_samples):
        return self.result(
            *loops.run_scheduled(
                self.arm_loop(method),
                self.forecaster(method),
                method in ANCESTRAL_METHODS,
                *self._canonical(noise, evidence, evidence_mask),
                first_samples,
            )
        )

    def _sample_many(self, method, seed, num_samples, slots):
        event = self.event_shape + (self.num_categories,)
        noise = noise_lib.gumbel_noise(tf.concat([[num_samples], event], axis=0), seed)
        noise = tf.ensure_shape(noise, (None,) + event)
        images = tf.concat([[num_samples], self.event_shape], axis=0)
        return self.scheduled_function(method)(
            noise, tf.zeros(images, tf.int32), tf.zeros(images, tf.bool), slots
        )

    def result(self, calls, out):
        """A `SampleResult` from the calls and the `tfps.sampling.loops.Results` of a loop."""

        image = self.x_layout

        return SampleResult(
            samples=image(out.output),
            arm_calls=calls,
            arm_calls_per_example=out.calls_per_example,
            converged_at=image(out.changed_at),
            accepted_at=image(out.accepted_at),
            forecast_mistakes=image(out.mistakes),
            forecasts_checked=out.checked,
        )


def _scheduled_entry(loop, noise, evidence, evidence_mask, slots):
    num_slots = tf.minimum(tf.maximum(slots, 1), tf.shape(noise)[0])
    return loop(noise, evidence, evidence_mask, tf.range(num_slots))
