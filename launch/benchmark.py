"""Benchmark every sampling method on a trained ARM in the format of [1, Table 1].

    python -m launch.benchmark --model=runs/digits28_binary --batch_sizes=1,32 --num_seeds=10

For each method and batch size: ARM calls (% of d) and time per batch, mean ± Bessel-corrected
std over seeds 0..num_seeds-1, and speedup against `ancestral`, all measured in this one run; plus
the peer `tfp.distributions.PixelCNN(...).sample` on a network of the same size. Writes
`<output>.md` and `<output>.json` and prints the table.

Per method it also writes, from the runs at the largest batch size (all seeds), the sample grid,
the forecasting-mistake map and the convergence map next to the measured ancestral baseline's as
`<output>_<picture>_<method>.png`; with `--logdir`, those pictures, the scalars of
`tfps.evaluation.summaries` plus the Table 1 figures per batch size (`table1/*_b<B>`) and a
histogram of ARM calls per sample go to TensorBoard, run `<logdir>/benchmark_<method>`, at the
checkpoint's training step.

`--strategy=mirrored` spreads every measured batch over every GPU (or `--cpu_replicas` CPU
devices): "batch B" still means B samples per timed batch, split into contiguous shares of about
B / R, one per replica, sampled in parallel; the samples are the one-device ones. The ARM calls
are those of the slowest replica (not summed over the replicas), which equal the one-device
calls of the batch, so "% of d" keeps its meaning (ancestral: 100%) and the speedups compare
like with like. The scheduling rows spread their N samples the same way, each replica with
ceil(B / R) slots; their batch-1 column and the TFP peer run on one device. The table's title
says so. `--strategy` and `--cpu_replicas` are those of `launch/sample.py`
(`launch.strategy_flags`):

    python -m launch.benchmark --model=runs/digits --strategy=mirrored --cpu_replicas=2

An ARM trained on autoencoder latents (`launch/train.py --config.data.latents_from`) gets the
[1, Table 2] title, and the time to decode a batch of latents with the autoencoder's decoder is
measured separately (not included in the table's times). The work is
`launch.benchmark_run.run_benchmark`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/benchmark.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from launch import benchmark_run, incremental_flags, strategy_flags
from tfps.serving import loading

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model",
    None,
    "A training run directory, a checkpoint prefix, or an exported "
    "SavedModel (exported/<name>[/<version>]).",
    required=True,
)
flags.DEFINE_list(
    "methods",
    None,
    "Methods to measure (default: all the model offers). "
    "`ancestral` is always measured, as the reference.",
)
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes.")
flags.DEFINE_integer("num_seeds", 10, "Seeds 0..num_seeds-1, one batch each.", lower_bound=1)
flags.DEFINE_bool("tfp_peer", True, "Also time tfp.distributions.PixelCNN.sample of the same size.")
flags.DEFINE_integer(
    "peer_seeds", None, "Seeds for the (slow, d-call) TFP peer; default num_seeds.", lower_bound=1
)
flags.DEFINE_integer(
    "best_of",
    1,
    "Time each seed's batch this many times and keep the fastest (1: once, the paper's "
    "protocol; 3-5 steadies ratios of millisecond loops on a loaded machine).",
    lower_bound=1,
)
flags.DEFINE_bool("jit_compile", False, "Compile the sampling loops with XLA.")
incremental_flags.define_flags(
    "Also time every method with incremental ARM calls (rows '<method> (incremental)'; "
    "a run directory only)."
)
flags.DEFINE_integer(
    "scheduled_samples",
    320,
    "N for the scheduling rows (N samples in "
    "--scheduled_slots slots vs plain batches vs batch 1); 0 skips them.",
    lower_bound=0,
)
flags.DEFINE_integer("scheduled_slots", 32, "B for the scheduling rows.", lower_bound=1)
flags.DEFINE_list("scheduled_methods", ["fpi"], "Methods for the scheduling rows.")
flags.DEFINE_integer(
    "repeats", 1, "Timed repeats (best of) for the scheduling rows.", lower_bound=1
)
flags.DEFINE_string(
    "output", None, "Prefix of the .md/.json results and PNG pictures (default <model>/benchmark)."
)
flags.DEFINE_string(
    "logdir",
    None,
    "Also write TensorBoard summaries under "
    "<logdir>/benchmark_<method>, e.g. the training run directory "
    "(default: none; the PNG files are written either way).",
)
strategy_flags.define_flags("each batch of B samples (and the N scheduled samples)")
flags.DEFINE_integer(
    "picture_samples", 32, "Samples shown in the sample and mistake grids.", lower_bound=1
)


@flags.validator("batch_sizes", "batch sizes must be integers >= 1")
def _check_batch_sizes(values):
    return all(v.strip().isdigit() and int(v) >= 1 for v in values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    options = benchmark_run.Options(
        methods=FLAGS.methods,
        batch_sizes=[int(b) for b in FLAGS.batch_sizes],
        num_seeds=FLAGS.num_seeds,
        tfp_peer=FLAGS.tfp_peer,
        peer_seeds=FLAGS.peer_seeds,
        jit_compile=FLAGS.jit_compile,
        scheduled_samples=FLAGS.scheduled_samples,
        scheduled_slots=FLAGS.scheduled_slots,
        scheduled_methods=FLAGS.scheduled_methods,
        repeats=FLAGS.repeats,
        best_of=FLAGS.best_of,
        output=FLAGS.output,
        logdir=FLAGS.logdir,
        picture_samples=FLAGS.picture_samples,
        incremental=incremental_flags.incremental(),
    )
    strategy = strategy_flags.strategy()
    try:
        with strategy.scope():  # weights mirrored over the replicas
            loaded = loading.load(FLAGS.model, FLAGS.jit_compile)
        benchmark_run.checked_methods(loaded, options, strategy)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    benchmark_run.run_benchmark(loaded, FLAGS.model, options, strategy=strategy)


if __name__ == "__main__":
    app.run(main)
