"""Batch scheduling for predictive sampling: N samples through B slots [1, sec. 4.1].

With a plain batch the slowest image decides the number of ARM calls: every example waits until
the last one has converged. The paper leaves "a scheduling system ... which would allow sampling at
an average rate equal to the batch size 1 setting" to future work; this is it.

The ARM runs on a batch of B *slots*. Samples 0, ..., N-1 wait in a queue. After every ARM call, a
slot whose sample has converged (n = d) writes that sample's results to row k of the `[N, ...]`
outputs and takes the next pending sample, with its own noise eps_k and evidence, and a fresh state
(n = 0, no previous call: its first call forecasts zeros). All of it runs inside one
`tf.while_loop` (`tfps.sampling.loops.run_scheduled`, behind
`tfps.sampling.predictive.PredictiveSampler.sample_scheduled`).

Exactness: sample k follows the trajectory it would follow alone at batch size 1, so it equals the
ancestral sample for eps_k [1, eq. 2, 5] and needs the same ARM calls c_k; the total number of
batch calls T obeys the list-scheduling bound sum_k c_k / B <= T <= ceil(sum_k c_k / B) + max_k c_k
(docs/proofs.md, "Scheduling is exact"), so calls per sample approach the batch-1 rate over B.

This module holds the queue bookkeeping the loop uses (pure tensor functions, XLA friendly: fixed
shapes, no boolean masks) and `calls_per_sample_report`, the benchmark of scheduled against
unscheduled batches and batch size 1.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import operator

import tensorflow as tf


def check_count(value, name):
    """`value` as a Python int >= 1, else ValueError naming `name`."""
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    if isinstance(value, bool) or count < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return count


def refill_slots(slot_sample, finished, next_pending, num_samples):
    """Hands the next pending samples to the finished slots, in slot order.

    Args:
      slot_sample: int32 `[B]`, the sample each slot holds; `num_samples` marks an empty slot.
      finished: bool `[B]`, slots whose sample is done (their results already written out).
      next_pending: int32 scalar, the first sample not yet handed to a slot.
      num_samples: int32 scalar N.

    Returns:
      `(slot_sample, refilled, next_pending)`: the new assignment (finished slots get
      next_pending, next_pending + 1, ... while samples remain, else become empty), bool `[B]`
      marking the slots that took a new sample, and the new queue head.
    """
    finished_int = tf.cast(finished, tf.int32)
    candidate = next_pending + tf.cumsum(finished_int, exclusive=True)
    refilled = finished & (candidate < num_samples)
    slot_sample = tf.where(finished, tf.where(refilled, candidate, num_samples), slot_sample)
    next_pending = tf.minimum(next_pending + tf.reduce_sum(finished_int), num_samples)
    return slot_sample, refilled, next_pending


def select_rows(mask, new, old):
    """Row-wise `where`: row b of the result is `new[b]` where `mask[b]`, else `old[b]`."""
    mask = tf.reshape(mask, [-1] + [1] * (new.shape.rank - 1))
    return tf.where(mask, new, old)


def scatter_rows(target, rows, values):
    """Writes `values[b]` to `target[rows[b]]`.

    Slots with nothing to write point at a dummy last row of `target` (shape `[N + 1, ...]`), so the
    update has a fixed shape; what lands in the dummy row is meaningless.
    """
    return tf.tensor_scatter_nd_update(target, rows[:, None], values)
