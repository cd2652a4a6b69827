"""Sampling under a budget: the variables that are final when ARM calls or time run out.

Predictive sampling accepts, with every ARM call, a prefix of the ordering that never changes
again [1, Algorithm 1]: after t calls the first n_t >= t variables are those of the ancestral sample
for the same noise, whatever comes after. A loop stopped early (`tfps.sampling.loops.Budget`)
therefore returns an exact prefix of the sample; with a prior over ordered codes that prefix
decodes to an image (anytime sampling [2], `tfps.sampling.prefix.sample_within_budget`). This
module checks budgets and reads the finished prefix of a stopped loop's `SampleResult`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

import math
import numbers

import numpy as np
import tensorflow as tf

UNLIMITED_CALLS = np.iinfo(np.int32).max


def check_budget(max_calls=None, max_seconds=None):
    """`(max_calls, max_seconds)` as an int and a float (None: unlimited), or ValueError naming
    the bad one: max_calls an int >= 1, max_seconds a finite number > 0, at least one given."""
    if max_calls is None and max_seconds is None:
        raise ValueError("a budget needs max_calls (ARM calls) or max_seconds, or both")
    if max_calls is not None:
        if isinstance(max_calls, bool) or not isinstance(max_calls, numbers.Integral):
            raise ValueError(f"max_calls must be an int >= 1, got {max_calls!r}")
        if not 1 <= int(max_calls) <= UNLIMITED_CALLS:
            raise ValueError(f"max_calls must be an int in 1..{UNLIMITED_CALLS}, got {max_calls}")
    if max_seconds is not None:
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, numbers.Real):
            raise ValueError(f"max_seconds must be a number > 0, got {max_seconds!r}")
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be finite and > 0, got {max_seconds}")
    return (
        UNLIMITED_CALLS if max_calls is None else int(max_calls),
        math.inf if max_seconds is None else float(max_seconds),
    )


def finished_prefix(accepted_at):
    """int32 `[B]`: how many variables, in the ordering, are final from the first on (the first
    with `accepted_at` 0 ends the prefix); `accepted_at` int `[B, ...]` of a `SampleResult`."""
    flat = tf.reshape(accepted_at, [tf.shape(accepted_at)[0], -1])
    missing = tf.equal(flat, 0)
    first = tf.argmax(tf.cast(missing, tf.int32), axis=1, output_type=tf.int32)
    return tf.where(tf.reduce_any(missing, axis=1), first, tf.shape(flat)[1])


def keep_prefix(samples, prefix):
    """`samples` `[B, ...]` with every variable from flat position `prefix` `[B]` on set to 0."""
    flat = tf.reshape(samples, [tf.shape(samples)[0], -1])
    kept = tf.sequence_mask(prefix, tf.shape(flat)[1])
    return tf.reshape(tf.where(kept, flat, tf.zeros_like(flat)), tf.shape(samples))


def finished_rows(samples, accepted_at, event_shape):
    """`(samples, rows)` of a stopped loop's results: rows, int32 `[B]`, how many positions of the
    event's first axis (a sequence's codes) have every variable final, and the samples with
    everything from the first unfinished row on set to 0. `event_shape`: `(n,)` or `(n, C)`."""
    channels = int(event_shape[1]) if len(event_shape) == 2 else 1
    rows = finished_prefix(accepted_at) // channels
    return keep_prefix(samples, rows * channels), rows
