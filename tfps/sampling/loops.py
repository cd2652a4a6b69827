"""The `tf.while_loop`s of predictive sampling: one ARM call per iteration [1, Algorithm 1].

`ArmLoop.step` is one ARM call for a batch: forecast from the previous call
(`tfps.sampling.forecasters`), run the ARM on the forecasts, accept the outputs up to and including
the first wrong forecast. `ArmLoop.run` repeats it until every example of the batch is complete;
`run_scheduled` runs N samples through B batch slots, refilling a slot as soon as its sample is done
(`tfps.sampling.slots`, [1, sec. 4.1]). Both share `step`, whose per-example counters make a
sample's trajectory independent of when it entered the batch.

The public API is `tfps.sampling.predictive.PredictiveSampler`; this module holds its loop
machinery. Both loops return the ARM calls and flat `Results`, `[B, d]` over the raster-then-channel
ordering (d = H * W * C), which the sampler reshapes into a `tfps.sampling.predictive.SampleResult`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps.sampling import forecasters as forecast_lib
from tfps.sampling import slots as slots_lib


class LoopState(NamedTuple):
    """The state of B examples between two ARM calls."""

    calls: tf.Tensor  # scalar int32, ARM calls so far
    num_valid: tf.Tensor  # [B] int32, n
    output: tf.Tensor  # [B, d] int32, g(x~, eps) of the last call, evidence written in
    logits: tf.Tensor  # [B, H, W, C, K]
    representation: tf.Tensor  # [B, H, W, F]
    calls_per_example: tf.Tensor  # [B]
    changed_at: tf.Tensor  # [B, d]
    accepted_at: tf.Tensor  # [B, d]
    mistakes: tf.Tensor  # [B, d] bool
    checked: tf.Tensor  # [B]
    arm_input: tf.Tensor = None  # [B, d] int32, the input of the last call
    arm_cache: tuple = None  # an incremental ARM's cache (None: no call yet; () if none)


class Slots(NamedTuple):
    """The B slots of the scheduled loop (`tfps.sampling.slots`)."""

    state: LoopState  # rows are slots
    sample: tf.Tensor  # [B] int32, the sample each slot holds; N when empty
    noise: tf.Tensor  # [B, H, W, C, K], that sample's noise
    evidence: tf.Tensor  # [B, d] int32
    observed: tf.Tensor  # [B, d] bool


class Results(NamedTuple):
    """Per-example results, flat: `[rows, d]` per variable, `[rows]` per example. A loop returns
    them for its B examples (N samples); the scheduled loop collects them in `N + 1` rows, the last
    a dummy."""

    output: tf.Tensor
    calls_per_example: tf.Tensor
    changed_at: tf.Tensor
    accepted_at: tf.Tensor
    mistakes: tf.Tensor
    checked: tf.Tensor


class FunctionCalls:
    """An incremental ARM whose `update` is one `tf.function`.

    A graph that runs several loops over the ARM (an export's signatures: every method, batch and
    scheduled) then holds each traced once instead of once per loop, and an export stays small.
    TensorFlow inlines the calls when it runs the graph.
    """

    def __init__(self, arm):
        self.arm = arm
        self.update = tf.function(arm.update, autograph=False, reduce_retracing=True)
        self.empty_cache = arm.empty_cache
        self.exact_positions = arm.exact_positions


class ArmLoop:
    """Predictive sampling loops around one ARM.

    Args:
      arm: callable mapping x int32 `[B, H, W, C]` to `(logits [B, H, W, C, K], h [B, H, W, F])`.
      image_shape: `(H, W, C)`.
      incremental: optional incremental ARM used instead of `arm`
        (`tfps.sampling.incremental.WindowArm`, or for ancestral sampling
        `tfps.sampling.kv_cache.KeyValueArm`): `empty_cache(batch)`, the cache of no call,
        `update(x, changed, needed, cache) -> (logits, h, cache)`, with positions as in `call_arm`
        (a sample's first call updates the empty cache), and `exact_positions(cache)`; its cache
        rides in the loop state. Its `update` is called as a `tf.function` (`FunctionCalls`).
    """

    def __init__(self, arm, image_shape, incremental=None):
        self.arm = arm
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_variables = int(np.prod(self.image_shape))
        self.incremental = None if incremental is None else FunctionCalls(incremental)

    def fresh_state(self, noise, evidence, observed, calls=None, representation=None):
        """The state of examples that have not been sampled yet: n = 0, no previous call.

        Args:
          noise: `[B, H, W, C, K]`; evidence, observed: `[B, d]`.
          calls: the global ARM call count to carry (default 0).
          representation: a tensor shaped like h to zero (default a `[B, 1, 1, 1]` placeholder:
            before the first call the sampler does not know h's shape).
        """
        batch = tf.shape(noise)[0]
        zeros = tf.zeros([batch, self.num_variables], tf.int32)
        return LoopState(
            calls=tf.constant(0) if calls is None else calls,
            num_valid=tf.zeros([batch], tf.int32),
            output=tf.where(observed, evidence, zeros),
            logits=tf.zeros_like(noise),
            representation=(
                tf.zeros([batch, 1, 1, 1])
                if representation is None
                else tf.zeros_like(representation)
            ),
            calls_per_example=tf.zeros([batch], tf.int32),
            changed_at=tf.ones_like(zeros),
            accepted_at=zeros,
            mistakes=tf.zeros_like(zeros, tf.bool),
            checked=tf.zeros([batch], tf.int32),
            arm_input=zeros,
        )

    def call_arm(self, state, x_in, fresh, observed, check=None):
        """The ARM on x_in `[B, d]` -> (logits, h, cache, exact): incremental from the state's
        cache. The logits are exact at flat positions < exact, int32 `[B]`: d for a plain ARM; an
        incremental one may leave later positions stale.

        `check`: optional `(noise [B, H, W, C, K], checked bool [B, H, W, C])`, the forecasts the
        call checks; an incremental ARM that takes it (`tfps.sampling.incremental.WindowArm`)
        computes on past its windows while every forecast in them held, as a full call accepts past
        them.

        An incremental ARM gets flat raster positions, int32 `[B]` (d: none): `needed`, the first
        free variable from n on (the one ancestral sampling accepts in this call, which it makes
        exact), and `changed`, the first position where x_in differs from its last call's input
        (0 for a fresh example; the first call of a batch updates the ARM's empty cache).
        """
        x = tf.reshape(x_in, (-1,) + self.image_shape)
        d = self.num_variables
        if self.incremental is None:
            return (*self.arm(x), (), tf.fill(tf.shape(x_in)[:1], d))
        needed = first_true((tf.range(d)[None, :] >= state.num_valid[:, None]) & ~observed)
        changed = first_true(tf.not_equal(x_in, state.arm_input) | fresh)
        cache = state.arm_cache
        if cache is None:  # the batch's first call: every example is fresh (changed 0)
            cache = self.incremental.empty_cache(tf.shape(x_in)[0])
        extra = {} if check is None else {"check": check}
        logits, h, cache = self.incremental.update(x, changed, needed, cache, **extra)
        return logits, h, cache, self.incremental.exact_positions(cache)

    def step(self, state, forecaster, ancestral, noise, evidence, observed):
        """One ARM call ([1, Algorithm 1]'s loop body) on the state's forecasts, for a batch.

        An example whose `calls_per_example` is 0 is fresh: its forecast is zeros whatever the
        forecaster (it has no previous call to forecast from). Counters (`changed_at`,
        `accepted_at`) are per example, 1-based from the example's own first call, so an example's
        trajectory does not depend on when it entered the batch. Examples with n = d are done and
        left unchanged (the ARM still sees them: the batch has a fixed shape).

        Args:
          state: `LoopState` of B examples.
          forecaster: `ForecastContext -> [B, d]` forecasts.
          ancestral: accept one variable per call instead of checking forecasts.
          noise: `[B, H, W, C, K]`; evidence int32 `[B, d]`; observed bool `[B, d]`.
        """
        d = self.num_variables
        positions = tf.range(d)[None, :]
        n = state.num_valid
        active = n < d
        fresh = tf.equal(state.calls_per_example, 0)[:, None]
        context = forecast_lib.ForecastContext(
            state.output, state.logits, state.representation, n, noise
        )
        forecast = tf.where(fresh, 0, forecaster(context))
        forecast = tf.where(positions < n[:, None], state.output, forecast)
        x_in = tf.where(observed, evidence, forecast)
        # Free variables from n on: the forecasts this call checks (ancestral sampling checks none).
        free = (positions >= n[:, None]) & ~observed
        check = None if ancestral else (noise, tf.reshape(free, tf.shape(noise)[:-1]))
        logits, h, cache, exact = self.call_arm(state, x_in, fresh, observed, check)
        logits = tf.cast(logits, tf.float32)
        output = tf.argmax(logits + noise, axis=-1, output_type=tf.int32)
        output = tf.where(observed, evidence, tf.reshape(output, tf.shape(evidence)))

        # Among the free variables, the first wrong forecast is the last accepted. A
        # variable whose logits are not exact (at or after `exact`) is never accepted: the first
        # of them stops acceptance before it (the ARM makes n's own logits exact).
        stale = positions >= exact[:, None]
        wrong = free if ancestral else free & (tf.not_equal(output, x_in) | stale)
        any_wrong = tf.reduce_any(wrong, axis=1)
        first_wrong = tf.argmax(tf.cast(wrong, tf.int32), axis=1, output_type=tf.int32)
        stops_at_stale = first_wrong >= exact
        new_n = tf.where(any_wrong, first_wrong + 1 - tf.cast(stops_at_stale, tf.int32), d)
        # Observed variables right after the accepted ones are valid too: skip to the next free.
        new_n = first_true(~observed & (positions >= new_n[:, None]))
        new_n = tf.where(active, new_n, n)

        own_call = (state.calls_per_example + 1)[:, None]  # this call, counted per example
        active_2d = active[:, None]
        newly_accepted = (positions >= n[:, None]) & (positions < new_n[:, None])
        checked_here = tf.reduce_sum(tf.cast(newly_accepted & ~observed, tf.int32), axis=1)
        mistake_here = (
            (positions == first_wrong[:, None]) & (any_wrong & ~stops_at_stale)[:, None] & active_2d
        )
        # On an example's first call every output counts as changed (there was no output before).
        changed = (tf.not_equal(output, state.output) | fresh) & active_2d
        return LoopState(
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
            arm_input=x_in,
            arm_cache=cache,
        )

    def run(self, forecaster, ancestral, noise, evidence, evidence_mask, budget=None):
        """Samples a batch until every example is complete: noise `[B, H, W, C, K]`, evidence
        int32 and evidence_mask bool `[B, H, W, C]` -> `(calls, Results)`.

        `budget`: optional `Budget`; the loop then also stops when it is spent, and the results
        hold what was accepted by then (`accepted_at` 0 elsewhere). The first call is always made.
        """
        d = self.num_variables
        batch = tf.shape(noise)[0]
        evidence = tf.reshape(evidence, [batch, d])
        observed = tf.reshape(evidence_mask, [batch, d])

        def step(state, forecast):
            return self.step(state, forecast, ancestral, noise, evidence, observed)

        def unfinished(state):
            pending = tf.reduce_any(state.num_valid < d)
            if budget is None:
                return pending
            # The clock is read after the last call's outputs exist (num_valid needs its logits).
            with tf.control_dependencies([state.num_valid]):
                return pending & budget.left(state.calls, start)

        start = None if budget is None else tf.timestamp()  # not under XLA: no clock there
        # The first call has nothing to forecast from (no h yet): forecast zeros, as the paper does.
        with tf.control_dependencies([] if start is None else [start]):  # clock, then calls
            first = step(self.fresh_state(noise, evidence, observed), forecast_lib.forecast_zeros)
        final = tf.while_loop(
            cond=unfinished,
            body=lambda state: (step(state, forecaster),),
            loop_vars=(first,),
            maximum_iterations=d - 1,
        )[0]
        return final.calls, Results(
            final.output,
            final.calls_per_example,
            final.changed_at,
            final.accepted_at,
            final.mistakes,
            final.checked,
        )


class Budget(NamedTuple):
    """What a budgeted loop may spend (`ArmLoop.run`): at most `max_calls` ARM calls (int32
    scalar) and `max_seconds` of wall time from before its first call (float64 scalar, read with
    `tf.timestamp` before each further call, so a call that starts in time may end after it)."""

    max_calls: tf.Tensor
    max_seconds: tf.Tensor

    def left(self, calls, start):
        """Whether another call may start: bool scalar."""
        in_time = tf.timestamp() - start < self.max_seconds
        return (calls < self.max_calls) & in_time


def first_true(mask):
    """The first True position of each row of bool `[B, d]`, int32 `[B]`; d where none is."""
    first = tf.argmax(tf.cast(mask, tf.int32), axis=1, output_type=tf.int32)
    return tf.where(tf.reduce_any(mask, axis=1), first, tf.shape(mask)[1])


def run_scheduled(loop, forecaster, ancestral, noise, evidence, evidence_mask, first_samples):
    """Predictive sampling of N samples in B = len(first_samples) slots (`tfps.sampling.slots`).

    Args:
      loop: the `ArmLoop`.
      forecaster: `ForecastContext -> [B, d]` forecasts; ancestral: as for `ArmLoop.step`.
      noise: `[N, H, W, C, K]`; evidence int32, evidence_mask bool `[N, H, W, C]`.
      first_samples: int32 `[B]`, the samples the slots start with (0 .. B - 1).

    Returns `(calls, Results)`, the results with N rows in sample order.
    """
    # Over 60 lines as one function: the while-loop's condition and body close over the slots'
    # state (queue, per-sample outputs, noise rows), which split functions would pass around.
    d = loop.num_variables
    num_samples = tf.shape(noise)[0]
    num_slots = tf.shape(first_samples)[0]
    evidence = tf.reshape(evidence, [num_samples, d])
    observed = tf.reshape(evidence_mask, [num_samples, d])

    def slot_inputs(sample):
        rows = tf.minimum(sample, num_samples - 1)  # empty slots hold N: any valid row does
        return tf.gather(noise, rows), tf.gather(evidence, rows), tf.gather(observed, rows)

    def step(slots, forecast):
        return slots._replace(
            state=loop.step(
                slots.state, forecast, ancestral, slots.noise, slots.evidence, slots.observed
            )
        )

    def retire_and_refill(slots, next_pending, finished_results):
        """Writes out the samples that are done and gives their slots the next pending ones."""
        state = slots.state
        done = (slots.sample < num_samples) & (state.num_valid >= d)

        def update():
            rows = tf.where(done, slots.sample, num_samples)
            results = Results(
                *(
                    slots_lib.scatter_rows(target, rows, getattr(state, field))
                    for field, target in zip(Results._fields, finished_results)
                )
            )
            sample, refilled, pending = slots_lib.refill_slots(
                slots.sample, done, next_pending, num_samples
            )
            new_inputs = slot_inputs(sample)
            fresh = loop.fresh_state(
                *new_inputs, calls=state.calls, representation=state.representation
            )
            reset = LoopState(
                *(
                    # A refilled slot is fresh: its next call recomputes every row of its cache.
                    old
                    if field in ("calls", "arm_cache")
                    else slots_lib.select_rows(refilled, new, old)
                    for field, new, old in zip(LoopState._fields, fresh, state)
                )
            )
            inputs = [
                slots_lib.select_rows(refilled, new, old)
                for new, old in zip(new_inputs, (slots.noise, slots.evidence, slots.observed))
            ]
            return Slots(reset, sample, *inputs), pending, results

        return tf.cond(tf.reduce_any(done), update, lambda: (slots, next_pending, finished_results))

    initial_inputs = slot_inputs(first_samples)
    initial = Slots(loop.fresh_state(*initial_inputs), first_samples, *initial_inputs)
    rows = num_samples + 1
    finished = Results(
        output=tf.zeros([rows, d], tf.int32),
        calls_per_example=tf.zeros([rows], tf.int32),
        changed_at=tf.ones([rows, d], tf.int32),
        accepted_at=tf.zeros([rows, d], tf.int32),
        mistakes=tf.zeros([rows, d], tf.bool),
        checked=tf.zeros([rows], tf.int32),
    )
    # The first call has nothing to forecast from: every slot forecasts zeros (see `step` for
    # slots refilled later). It runs outside the loop because it fixes h's shape.
    first = retire_and_refill(step(initial, forecast_lib.forecast_zeros), num_slots, finished)
    # Every call moves each busy slot forward by >= 1 variable, so by the list-scheduling
    # bound (`tfps.sampling.slots`) the loop ends within ceil(N d / B) + d calls.
    bound = tf.cast(num_samples, tf.int64) * d // tf.cast(num_slots, tf.int64) + d + 1
    final_slots, _, results = tf.while_loop(
        cond=lambda slots, pending, results: tf.reduce_any(slots.sample < num_samples),
        body=lambda slots, pending, results: retire_and_refill(
            step(slots, forecaster), pending, results
        ),
        loop_vars=first,
        maximum_iterations=tf.cast(tf.minimum(bound, np.iinfo(np.int32).max), tf.int32),
    )

    def take(t):
        return t[:num_samples]

    return final_slots.state.calls, Results(*(take(t) for t in results))
