"""Benchmark every sampling method on a trained ARM in the format of seed 000's Table 1.

    python -m launch.benchmark --model=runs/digits28_binary --batch_sizes=1,32 --num_seeds=10

For each method and batch size: ARM calls (% of d) and time per batch, mean ± Bessel-corrected
std over seeds 0..num_seeds-1, and speedup against `ancestral`, all measured in this one run; plus
the peer `tfp.distributions.PixelCNN(...).sample` on a network of the same size. Writes
`<output>.md` and `<output>.json` and prints the table.

Per method it also writes, from the runs at the largest batch size (all seeds), the sample grid, the
forecasting-mistake map and the convergence map next to the measured ancestral baseline's as
`<output>_<picture>_<method>.png`; with `--logdir`, those pictures, the scalars of
`tfps.summaries` plus the Table 1 figures per batch size (`table1/*_b<B>`) and a histogram of ARM
calls per sample go to TensorBoard, run `<logdir>/benchmark_<method>`, at the checkpoint's training
step.

An ARM trained on autoencoder latents
(`launch/train.py --latents_from`) gets the Table 2 title, and the time to decode a batch of
latents with the autoencoder's decoder is measured separately (not included in the table's times).
"""
import os
import sys

if __package__ in (None, ""):  # `python launch/benchmark.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from tfps import benchmarking
from tfps import export
from tfps import latent
from tfps import sampling
from tfps import scheduling
from tfps import summaries
from tfps import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run directory, a checkpoint prefix, or an exported "
                                   "SavedModel (exported/<name>[/<version>]).", required=True)
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
flags.DEFINE_string("output", None, "Prefix of the .md/.json results and PNG pictures "
                                    "(default <model>/benchmark).")
flags.DEFINE_string("logdir", None, "Also write TensorBoard summaries under "
                                    "<logdir>/benchmark_<method>, e.g. the training run directory "
                                    "(default: none; the PNG files are written either way).")
flags.DEFINE_integer("picture_samples", 32, "Samples shown in the sample and mistake grids.",
                     lower_bound=1)


@flags.validator("batch_sizes", "batch sizes must be integers >= 1")
def _check_batch_sizes(values):
    return all(v.strip().isdigit() and int(v) >= 1 for v in values)


def load(path, jit_compile):
    """(sampler, architecture, config, heads, decoder) for a run, checkpoint or exported SavedModel.

    Through a SavedModel the export's own sampling loops are timed (its `jit_compile` was fixed
    at export); `config` is then the export's training metadata, and decoding is not timed.
    """
    if export.is_export(path):
        exported = export.load_exported(path)
        metadata = exported.metadata
        return exported, metadata["model"], metadata.get("training") or {}, None, None
    model, config = training.load_trained(path)
    heads = config.get("forecast_heads")
    sampler = sampling.sampler_for_model(model, jit_compile=jit_compile, heads=heads)
    decoder = latent.decoder_for(config)  # None unless the ARM models latents
    return sampler, model.model_config(), config, heads, decoder


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        sampler, architecture, config, heads, decoder = load(FLAGS.model, FLAGS.jit_compile)
        methods = FLAGS.methods or list(sampler.methods)
        for method in methods + (FLAGS.scheduled_methods if FLAGS.scheduled_samples else []):
            sampler.check_method(method)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    seeds = range(FLAGS.num_seeds)
    dataset = (config.get("dataset") or {}).get("name", "?")
    scales = architecture.get("num_scales", 1)
    title = (f"{dataset}: d = {sampler.num_variables}, K = {sampler.num_categories}, "
             f"{architecture['num_resnets']} resnets x {architecture['filters']} filters"
             f"{'' if scales == 1 else f' x {scales} scales'}"
             f"{', through the SavedModel' if export.is_export(FLAGS.model) else ''}"
             f"{'' if heads is None else f', {heads.method} heads T={heads.steps}'}"
             f"{', XLA' if FLAGS.jit_compile else ''}")
    if decoder is not None:
        title = f"Table 2 format, ARM on the latents of an autoencoder: {title}"
    print(f"benchmarking {title}")
    results = {}
    rows = benchmarking.benchmark_sampler(sampler, methods, batch_sizes, seeds, results=results)
    # Table 1 names learned rows by their window: "learned (T=20)".
    labels = {} if heads is None else {heads.method: f"{heads.method} (T={heads.steps})"}
    for row in rows:
        row.method = labels.get(row.method, row.method)
    if FLAGS.tfp_peer:
        peer = benchmarking.tfp_pixelcnn_peer(sampler.image_shape, sampler.num_categories,
                                              architecture["num_resnets"], architecture["filters"],
                                              scales)
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
    footer = scheduling.markdown_rows(scheduling_reports)
    decode_times = {}
    if decoder is not None:
        decode_times = latent.time_decode(decoder, batch_sizes, seeds)
        footer = "\n\n".join(f for f in (footer, latent.decode_time_line(decode_times)) if f)
    exported_to = export.default_samples_dir(FLAGS.model)  # never write inside an export
    output = FLAGS.output or os.path.join(exported_to or FLAGS.model.rstrip("/"), "benchmark")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    table = benchmarking.write_results(
        rows, output, title, extra={"model": FLAGS.model, "dataset": dataset,
                                    "scheduling": scheduling_reports,
                                    "decode_seconds": {str(b): list(t)
                                                       for b, t in decode_times.items()}},
        footer=footer)
    print(table)
    print(f"wrote {output}.md and {output}.json")
    write_inspections(rows, results, sampler, output, FLAGS.logdir, config.get("step") or 0,
                      labels)


def write_inspections(rows, results, sampler, output, logdir, step, labels):
    """Pictures (PNG, and TensorBoard with `logdir`) and scalars per method; see the module doc."""
    batch = max(b for _, b in results)
    ancestral = summaries.concat_results(results[(sampling.ANCESTRAL, batch)])
    for method in dict.fromkeys(m for m, _ in results):
        result = summaries.concat_results(results[(method, batch)])
        label = labels.get(method, method)
        row = next(r for r in rows if (r.method, r.batch_size) == (label, batch))
        inspection = summaries.inspect(
            result, method, sampler.num_categories, seconds_per_sample=row.time_mean / batch,
            seconds_description=(f"Seconds per sample at batch size {batch}: mean time per batch "
                                 f"over {row.seeds} seeds / {batch}, tracing excluded."),
            baseline=summaries.determined_at(ancestral, sampling.ANCESTRAL),
            max_samples=FLAGS.picture_samples)
        pngs = summaries.write_pngs(f"{output}_", method, inspection)
        print(f"{method}: wrote {', '.join(pngs)}")
        if logdir:
            table1 = {}
            for r in (r for r in rows if r.method == label):
                table1[f"table1/arm_calls_percent_b{r.batch_size}"] = r.calls_percent_mean
                table1[f"table1/seconds_per_batch_b{r.batch_size}"] = r.time_mean
                table1[f"table1/speedup_b{r.batch_size}"] = r.speedup
            run = summaries.run_dir(logdir, summaries.BENCHMARK_RUN, method)
            summaries.write_tensorboard(run, step, inspection, extra_scalars=table1)
            print(f"{method}: wrote TensorBoard summaries to {run} (step {step})")


if __name__ == "__main__":
    app.run(main)
