"""Benchmark every sampling method on a trained ARM in the format of seed 000's Table 1.

    python -m launch.benchmark --model=runs/digits28_binary --batch_sizes=1,32 --num_seeds=10

For each method and batch size: ARM calls (% of d) and time per batch, mean ± Bessel-corrected
std over seeds 0..num_seeds-1, and speedup against `ancestral`, all measured in this one run; plus
the peer `tfp.distributions.PixelCNN(...).sample` on a network of the same size. Writes
`<output>.md` and `<output>.json` and prints the table.
"""
import os
import sys

if __package__ in (None, ""):  # `python launch/benchmark.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from tfps import benchmarking
from tfps import sampling
from tfps import scheduling
from tfps import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run directory or checkpoint prefix.", required=True)
flags.DEFINE_list("methods", None, "Methods to measure (default: all the model offers). "
                                   "`ancestral` is always measured, as the reference.")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes.")
flags.DEFINE_integer("num_seeds", 10, "Seeds 0..num_seeds-1, one batch each.", lower_bound=1)
flags.DEFINE_bool("tfp_peer", True, "Also time tfp.distributions.PixelCNN.sample of the same size.")
flags.DEFINE_integer("peer_seeds", None, "Seeds for the (slow, d-call) TFP peer; default num_seeds.",
                     lower_bound=1)
flags.DEFINE_bool("jit_compile", False, "Compile the sampling loops with XLA.")
flags.DEFINE_integer("scheduled_samples", 320, "N for the scheduling rows (N samples in "
                     "--scheduled_slots slots vs plain batches vs batch 1); 0 skips them.",
                     lower_bound=0)
flags.DEFINE_integer("scheduled_slots", 32, "B for the scheduling rows.", lower_bound=1)
flags.DEFINE_list("scheduled_methods", ["fpi"], "Methods for the scheduling rows.")
flags.DEFINE_integer("repeats", 1, "Timed repeats (best of) for the scheduling rows.", lower_bound=1)
flags.DEFINE_string("output", None, "Prefix of the .md/.json results (default <model>/benchmark).")


@flags.validator("batch_sizes", "batch sizes must be integers >= 1")
def _check_batch_sizes(values):
    return all(v.strip().isdigit() and int(v) >= 1 for v in values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        model, config = training.load_trained(FLAGS.model)
        heads = config.get("forecast_heads")
        sampler = sampling.sampler_for_model(model, jit_compile=FLAGS.jit_compile, heads=heads)
        methods = FLAGS.methods or list(sampler.methods)
        for method in methods + (FLAGS.scheduled_methods if FLAGS.scheduled_samples else []):
            sampler.check_method(method)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    seeds = range(FLAGS.num_seeds)
    dataset = config.get("dataset", {}).get("name", "?")
    title = (f"{dataset}: d = {sampler.num_variables}, K = {sampler.num_categories}, "
             f"{model.num_resnets} resnets x {model.filters} filters"
             f"{'' if heads is None else f', {heads.method} heads T={heads.steps}'}"
             f"{', XLA' if FLAGS.jit_compile else ''}")
    print(f"benchmarking {title}")
    rows = benchmarking.benchmark_sampler(sampler, methods, batch_sizes, seeds)
    if heads is not None:  # Table 1 names learned rows by their window: "learned (T=20)".
        for row in rows:
            if row.method == heads.method:
                row.method = f"{heads.method} (T={heads.steps})"
    if FLAGS.tfp_peer:
        peer = benchmarking.tfp_pixelcnn_peer(model.image_shape, model.num_categories,
                                              model.num_resnets, model.filters)
        ancestral = {r.batch_size: r.time_mean for r in rows if r.method == "ancestral"}
        peer_seeds = range(FLAGS.peer_seeds or FLAGS.num_seeds)
        rows += benchmarking.benchmark_tfp_peer(peer, sampler.num_variables, batch_sizes, peer_seeds,
                                                reference_times=ancestral)
    scheduling_reports = []
    for method in FLAGS.scheduled_methods if FLAGS.scheduled_samples else []:
        print(f"scheduling rows: {method}, N={FLAGS.scheduled_samples}, B={FLAGS.scheduled_slots}")
        scheduling_reports.append(scheduling.calls_per_sample_report(
            sampler, FLAGS.scheduled_samples, FLAGS.scheduled_slots, method, seed=0,
            repeats=FLAGS.repeats))
    output = FLAGS.output or os.path.join(FLAGS.model.rstrip("/"), "benchmark")
    table = benchmarking.write_results(
        rows, output, title, extra={"model": FLAGS.model, "dataset": dataset,
                                    "scheduling": scheduling_reports},
        footer=scheduling.markdown_rows(scheduling_reports))
    print(table)
    print(f"wrote {output}.md and {output}.json")


if __name__ == "__main__":
    app.run(main)
