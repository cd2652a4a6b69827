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

Training (`tfps.train.trainer.fit`) splits each global batch of `batch_size` examples across the
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
import os
import shutil
import tempfile

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION = ("mixed_bfloat16", "mixed_float16")

RANGES = {  # config field: (predicate, what the value must be), merged into tfps.train.config's
    "strategy": (lambda v: v in STRATEGIES, "one of " + ", ".join(map(repr, STRATEGIES))),
    "cpu_replicas": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "mixed_precision": (
        lambda v: v is None or v in MIXED_PRECISION,
        "None or one of " + ", ".join(map(repr, MIXED_PRECISION)),
    ),
    "jit_compile": (lambda v: isinstance(v, bool), "true or false"),
}


def _setting(default, help_text):
    # A `tfps.train.config` field of the `training` section of the nested form.
    return dataclasses.field(
        default=default, metadata={"help": help_text, "section": "training", "key": None}
    )


@dataclasses.dataclass
class DistributeConfig:
    """How a run uses its devices; the first fields of every `tfps.train.config.RunConfig`."""

    strategy: str = _setting(
        "default",
        "tf.distribute strategy (tfps.distribute.strategies): default (one device), mirrored "
        "(every GPU, or cpu_replicas CPU devices), multi_worker (TF_CONFIG), tpu (TPU_NAME).",
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


class WorkerLostError(RuntimeError):
    """A worker of a multi-worker run was lost mid-run (its collectives failed)."""


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
    name = os.environ.get("TPU_NAME", "")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except OSError as e:  # urllib's URLError: a TPU name is looked up on Google Cloud's servers
        raise StrategyError(
            f"strategy=tpu needs a TPU: TPU_NAME={name!r} names none that this machine can reach "
            f"(a TPU name is resolved through Google Cloud, on a TPU VM or Colab; elsewhere set "
            f"TPU_NAME to a grpc:// address): {e}"
        ) from e
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
def reporting_lost_workers(strategy, saved_step):
    """`with reporting_lost_workers(strategy, saved_step):` turns the failed collectives of a
    multi-worker run that lost a worker (SIGKILL, a machine gone: `UnavailableError`,
    `AbortedError`, `DeadlineExceededError`) into one `WorkerLostError` naming the newest checkpoint
    (`saved_step() -> int or None`) and how to resume; other strategies' errors pass unchanged."""
    lost = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError)
    try:
        yield
    except lost as e:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        lines = [line.strip() for line in str(e.message).splitlines() if line.strip()]
        cause = next((line for line in lines if "aborted by" in line), lines[0] if lines else "")
        step = saved_step()
        raise WorkerLostError(
            f"a worker of the multi-worker run was lost ({type(e).__name__}: {cause}); the newest "
            f"checkpoint is {'none' if step is None else f'at step {step}'}: start every worker "
            "again with the same command to resume from it"
        ) from e


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
