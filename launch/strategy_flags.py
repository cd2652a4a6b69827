"""`--strategy` and `--cpu_replicas` of the sampling launchers (`launch/sample.py`,
`launch/benchmark.py`), defined and checked once.

    python -m launch.sample --model=runs/digits --strategy=mirrored --cpu_replicas=2

`define_flags(spread)` defines both flags, `spread` saying in their help what is spread over the
replicas, and checks them together (`tfps.distribute.replicated.check_sampling`): a strategy other
than `default` or `mirrored`, or `--cpu_replicas` without `mirrored`, is one flag error.
`strategy()` makes the `tf.distribute.Strategy` (before any other TensorFlow op: it may split the
CPU).
"""

from absl import app, flags

from tfps.distribute import replicated, strategies

FLAGS = flags.FLAGS


def define_flags(spread):
    """Defines `--strategy` and `--cpu_replicas`; `spread`: what the replicas share out (help)."""
    flags.DEFINE_string(
        "strategy",
        "default",
        f"tf.distribute strategy: {' or '.join(replicated.SAMPLING_STRATEGIES)}. default: one "
        f"device; mirrored: {spread} split into contiguous shares over every GPU (or "
        f"--cpu_replicas CPU devices), giving the one-device samples.",
    )
    flags.DEFINE_integer(
        "cpu_replicas",
        None,
        "With --strategy=mirrored: split the CPU into this many logical devices (its replicas).",
    )
    flags.register_multi_flags_validator(["strategy", "cpu_replicas"], _check)


def _check(values):
    try:
        replicated.check_sampling(values["strategy"], values["cpu_replicas"])
    except ValueError as e:
        raise flags.ValidationError(str(e)) from e
    return True


def strategy():
    """The strategy of the parsed flags (`tfps.distribute.strategies.make_strategy`); app.UsageError
    when it cannot run here."""
    try:
        return strategies.make_strategy(FLAGS.strategy, FLAGS.cpu_replicas)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
