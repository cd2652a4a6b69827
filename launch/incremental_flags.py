"""`--incremental` and `--incremental_rows` of the sampling launchers (`launch/sample.py`,
`launch/benchmark.py`), defined and checked once.

    python -m launch.sample --model=runs/digits --incremental --incremental_rows=4 --jit_compile

`define_flags(what)` defines both, `what` saying in `--incremental`'s help what it does in that
launcher; `--incremental_rows` without `--incremental` is one flag error. `incremental()` is the
value for `tfps.serving.loading.load(..., incremental=)`: False, True (the default window) or the
rows.
"""

from absl import flags

FLAGS = flags.FLAGS


def define_flags(what):
    """Defines `--incremental` (help: `what`) and `--incremental_rows`."""
    flags.DEFINE_bool("incremental", False, what)
    flags.DEFINE_integer(
        "incremental_rows",
        None,
        "With --incremental: the rows each incremental call computes per example (default "
        "tfps.sampling.incremental.DEFAULT_WINDOW_ROWS; rounded up to a multiple of "
        "2**(scales - 1)). "
        "Smaller windows suit XLA (docs/incremental.md).",
        lower_bound=1,
    )
    flags.register_multi_flags_validator(
        ["incremental", "incremental_rows"],
        lambda v: v["incremental_rows"] is None or v["incremental"],
        "--incremental_rows needs --incremental",
    )


def incremental():
    """False, True (the default window) or `--incremental_rows`."""
    return FLAGS.incremental and (FLAGS.incremental_rows or True)
