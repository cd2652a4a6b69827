"""Sampling spread over the replicas of one machine: N samples in contiguous shares, one per
replica, concatenated in sample order (sample k is the one-device sample for noise row k).
"""

import functools

import numpy as np
import tensorflow as tf

from tfps.distribute import strategies

# What sampling can spread over: the replicas of one machine (or one device).
SAMPLING_STRATEGIES = ("default", "mirrored")


def shares(num_samples, replicas):
    """Contiguous `(start, stop)` rows of each replica: sizes differ by at most one, the first
    replicas taking the extra rows (a replica may get none when N < replicas)."""
    bounds = np.cumsum([0] + [len(s) for s in np.array_split(np.arange(num_samples), replicas)])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def check_sampling(name="default", cpu_replicas=None):
    """Raises ValueError naming the problem unless sampling (and benchmarking) can spread over
    strategy `name`: one of `SAMPLING_STRATEGIES`, `cpu_replicas` only with `mirrored`."""
    if name not in SAMPLING_STRATEGIES:
        raise ValueError(
            f"strategy must be one of {', '.join(map(repr, SAMPLING_STRATEGIES))} to sample or "
            f"benchmark (the replicas of one machine; multi_worker and tpu are for training), "
            f"got {name!r}"
        )
    strategies.check(name, cpu_replicas)
    if cpu_replicas is not None and name != "mirrored":
        raise ValueError(
            f"cpu_replicas={cpu_replicas} needs strategy 'mirrored' (its replicas are the CPU's "
            f"logical devices), got strategy {name!r}"
        )


def check_replicable(sampler, strategy):
    """ValueError unless `sampler` can run on the replicas of `strategy` (one replica: always)."""
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return
    if not isinstance(strategy, tf.distribute.MirroredStrategy):
        raise ValueError(
            f"sampling spreads over the replicas of one machine (strategy one of "
            f"{', '.join(SAMPLING_STRATEGIES)}), got {type(strategy).__name__}"
        )
    if not hasattr(sampler, "scheduled_loop_function"):
        raise ValueError("sampling over several replicas needs a training run, not an export")


def replicated_sampler(sampler, strategy, method="fpi", slots=None, calls="sum"):
    """`noise -> SampleResult`: the samples of `noise` (float32 `[N, H, W, C, K]`) spread over the
    replicas of `strategy` (`SAMPLING_STRATEGIES`), in sample order.

    Replica r samples its contiguous share of the noise rows (`shares`): with `slots`, the
    scheduled loop in that many slots (`sampler.scheduled_loop_function`); without, its share
    as one plain batch (`sampler.loop_function`). Sample k and every per-sample field equal the
    one-device ones for row k. A replica without a share runs one dummy row whose result is
    dropped. The replicated `tf.function` is built here, once, and traced once per noise shape,
    so a timed call after a first one excludes tracing.

    `calls`: what `arm_calls` reports. "sum": the ARM forward passes of all replicas together
    (the work done). "max": those of the slowest replica, i.e. the calls made one after another
    (the replicas call in parallel, so the wall clock follows these); a plain batch split over
    the replicas then reports exactly the calls of the whole batch on one device.
    """
    check_replicable(sampler, strategy)
    if calls not in ("sum", "max"):
        raise ValueError(f"calls must be 'sum' or 'max', got {calls!r}")
    if slots is None:
        loop = sampler.loop_function(method)
        extra = ()
    else:
        loop = sampler.scheduled_loop_function(method)
        extra = (tf.constant(int(slots), tf.int32),)

    def run_share(share):
        images = tf.shape(share)[:-1]
        return loop(share, tf.zeros(images, tf.int32), tf.zeros(images, tf.bool), *extra)

    if strategy is None or strategy.num_replicas_in_sync == 1:
        return lambda noise: run_share(sampler.check_noise(noise))
    replicas = strategy.num_replicas_in_sync
    # A partial (no __code__): each replicated sampler keeps its own retracing statistics.
    replicated = tf.function(functools.partial(strategy.run, run_share), autograph=False)
    combine = tf.add_n if calls == "sum" else lambda c: tf.reduce_max(tf.stack(c))

    def run(noise):
        noise = sampler.check_noise(noise)
        bounds = shares(int(noise.shape[0]), replicas)
        parts = [noise[a:b] if b > a else noise[:1] for a, b in bounds]
        per_replica = replicated(
            args=(
                strategy.experimental_distribute_values_from_function(
                    lambda context: parts[context.replica_id_in_sync_group]
                ),
            )
        )
        results = [
            type(per_replica)(*[strategy.experimental_local_results(f)[r] for f in per_replica])
            for r, (a, b) in enumerate(bounds)
            if b > a
        ]
        fields = {
            name: tf.concat([getattr(r, name) for r in results], axis=0)
            for name in results[0]._fields
            if name != "arm_calls"
        }
        arm_calls = combine([tf.identity(r.arm_calls) for r in results])
        return type(results[0])(arm_calls=arm_calls, **fields)

    return run


def sample_replicated(sampler, strategy, noise, method="fpi", slots=32):
    """`sampler.sample_scheduled(noise, method, slots)` with the N samples spread over the replicas
    of `strategy` (`SAMPLING_STRATEGIES`). Returns a `tfps.sampling.SampleResult`.

    Replica r runs the scheduled loop with `slots` slots on its contiguous share of the noise rows
    (`replicated_sampler`); sample k and every per-sample field equal the one-device ones, and
    `arm_calls` is the SUM over replicas of their ARM forward passes (the work done; the wall
    clock follows the largest share's).
    """
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return sampler.sample_scheduled(noise, method, slots)
    return replicated_sampler(sampler, strategy, method, slots)(noise)
