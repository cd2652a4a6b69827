"""Scale-out with tf.distribute: one strategy for training and sampling.

`make_strategy(name, cpu_replicas)` returns the `tf.distribute.Strategy` of a run:

    default        one device, TF's default strategy (the path the regression tests pin)
    mirrored       synchronous data parallelism over every visible GPU of this machine; on a
                   machine without GPUs, `cpu_replicas=N` splits the CPU into N logical devices
                   so that the same path runs (and is tested) there
    multi_worker   `tf.distribute.MultiWorkerMirroredStrategy` over the cluster described by the
                   standard `TF_CONFIG` environment variable (one process per machine)
    tpu            `tf.distribute.TPUStrategy` on the TPU named by `TPU_NAME` (or the local one),
                   through `tf.distribute.cluster_resolver.TPUClusterResolver`

Training (`tfps.trainer.fit`) splits each global batch of `batch_size` examples across the
replicas and scales every replica's loss by its share of the global batch, so the gradients,
summed across replicas, are those of the mean over the global batch: the same global batch trains
the same model on 1 or N replicas. Variables are mirrored, so checkpoints do not depend on the
strategy and a run resumes under any replica count.

Only the chief (`is_chief`) writes into the run directory; the other workers of a multi-worker
run write their checkpoints and summaries (which MultiWorkerMirroredStrategy needs every worker
to save) into a temporary directory that is removed at the end (`worker_dir`), as TF's
multi-worker guide recommends.

Sampling (`sample_replicated`) spreads N samples over the replicas: the N rows of Gumbel noise
are split into contiguous shares, each replica runs the scheduled loop on its share, and the
results are concatenated in sample order, so sample k is the one-device sample for noise row k.
The benchmarks split each batch the same way (`replicated_sampler`, a plain batch per replica or
scheduled slots), counting the ARM calls of the slowest replica, which run in parallel with the
others'. Sampling and benchmarking take `default` or `mirrored` (`check_sampling`).
"""

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION = ("mixed_bfloat16", "mixed_float16")
# What sampling can spread over: the replicas of one machine (or one device).
SAMPLING_STRATEGIES = ("default", "mirrored")

RANGES = {  # config field: (predicate, what the value must be), merged into tfps.config's
    "strategy": (lambda v: v in STRATEGIES, "one of " + ", ".join(map(repr, STRATEGIES))),
    "cpu_replicas": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "mixed_precision": (
        lambda v: v is None or v in MIXED_PRECISION,
        "None or one of " + ", ".join(map(repr, MIXED_PRECISION)),
    ),
    "jit_compile": (lambda v: isinstance(v, bool), "true or false"),
}


def _setting(default, help_text):
    # A `tfps.config` field of the `training` section of the nested form.
    return dataclasses.field(
        default=default, metadata={"help": help_text, "section": "training", "key": None}
    )


@dataclasses.dataclass
class DistributeConfig:
    """How a run uses its devices; the first fields of every `tfps.config.RunConfig`."""

    strategy: str = _setting(
        "default",
        "tf.distribute strategy (tfps.distribute): default (one device), mirrored (every GPU, "
        "or cpu_replicas CPU devices), multi_worker (TF_CONFIG), tpu (TPU_NAME).",
    )
    cpu_replicas: int | None = _setting(
        None, "Split the CPU into this many logical devices (for mirrored without GPUs)."
    )
    mixed_precision: str | None = _setting(
        None,
        "Keras mixed-precision policy: mixed_bfloat16 or mixed_float16 (with loss scaling); "
        "logits and loss stay float32. None: float32.",
    )
    jit_compile: bool = _setting(False, "Compile the training step with XLA.")


class StrategyError(ValueError):
    """The requested strategy cannot run here (no TPU, devices already initialised, ...)."""


def check(strategy="default", cpu_replicas=None, mixed_precision=None):
    """Raises ValueError naming the first bad setting."""
    values = dict(strategy=strategy, cpu_replicas=cpu_replicas, mixed_precision=mixed_precision)
    for name, value in values.items():
        predicate, requirement = RANGES[name]
        if not predicate(value):
            raise ValueError(f"{name} must be {requirement}, got {value!r}")


def split_cpu(replicas):
    """Splits the first CPU into `replicas` logical devices (a no-op for 1 or when it already is).

    Must run before TensorFlow initialises its devices (its first op); else StrategyError.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if replicas <= 1 or (current is not None and len(current) == replicas):
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError as e:
        raise StrategyError(
            f"cpu_replicas={replicas}: TensorFlow's devices are already initialised; choose the "
            f"strategy before running any TensorFlow op ({e})"
        ) from e


def make_strategy(name="default", cpu_replicas=None):
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

    `cpu_replicas`: split the CPU into this many logical devices first; `mirrored` uses them when
    the machine has no GPU. Call this before any other TensorFlow op (logical devices and
    multi-worker collectives are configured at start-up). Raises ValueError for a bad name and
    StrategyError when the strategy cannot run here.
    """
    check(name, cpu_replicas)
    if cpu_replicas is not None:
        split_cpu(cpu_replicas)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy()


def _tpu_strategy():
    """TPUStrategy on the TPU of `TPU_NAME` (a name, or grpc:// address; "" or unset: local)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise StrategyError(
            f"strategy=tpu needs a TPU (set TPU_NAME to its name or grpc:// address on a TPU "
            f"VM or Colab); none was found: {e}"
        ) from e
    return tf.distribute.TPUStrategy(resolver)


def strategy_for(config):
    """`make_strategy` of a run config's `strategy` and `cpu_replicas`."""
    return make_strategy(config.strategy, config.cpu_replicas)


def is_chief(strategy):
    """Whether this process writes what the user sees: True except for the non-chief workers of
    a multi-worker cluster (the chief is task `chief`, else `worker` 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    jobs = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in jobs


@contextlib.contextmanager
def worker_dir(logdir, strategy):
    """`with worker_dir(logdir, strategy) as path:` the directory this process writes its run to:
    `logdir` for the chief, a temporary directory (removed on exit) for the other workers."""
    if is_chief(strategy):
        yield logdir
        return
    path = tempfile.mkdtemp(prefix="tfps_worker_")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- sampling


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
    check(name, cpu_replicas)
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
