"""A full benchmark of a loaded model, as `launch/benchmark.py` runs it [1, Table 1, Table 2].

For each method and batch size: ARM calls (% of d) and time per batch, mean ± Bessel-corrected
std over the seeds, and speedup against `ancestral` (`tfps.evaluation.benchmarking`); optionally the
peer `tfp.distributions.PixelCNN(...).sample` of the same size, the scheduling rows
(`tfps.evaluation.scheduling_report.calls_per_sample_report`) and, for an ARM on autoencoder
latents, the decode time. Writes `<output>.md` and `<output>.json`, and per method, from the runs at
the largest batch size, the sample grid, the forecasting-mistake map and the convergence map next to
the ancestral baseline's as `<output>_<picture>_<method>.png`; with a `logdir` also TensorBoard
summaries in `<logdir>/benchmark_<method>` at the checkpoint's training step. On several replicas
(`run_benchmark`'s `strategy`) each batch is spread over them, with the one-device samples.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import contextlib
import dataclasses
import os
from typing import Optional, Sequence, Union

from tfps.distribute import replicated
from tfps.evaluation import benchmarking, scheduling_report, summaries
from tfps.sampling import predictive
from tfps.serving import export, incremental_choice, loading


@dataclasses.dataclass
class Options:
    """What to measure (the flags of `launch/benchmark.py`, same names and defaults)."""

    methods: Optional[Sequence[str]] = None  # default: all the sampler offers
    batch_sizes: Sequence[int] = (1, 32)
    num_seeds: int = 10
    tfp_peer: bool = True
    peer_seeds: Optional[int] = None  # default: num_seeds
    jit_compile: bool = False  # only named in the title; the loader compiles
    scheduled_samples: int = 320  # 0 skips the scheduling rows
    scheduled_slots: int = 32
    scheduled_methods: Sequence[str] = ("fpi",)
    repeats: int = 1
    best_of: int = 1  # each seed's time of a Table 1 row: the fastest of this many runs
    output: Optional[str] = None  # default: <model>/benchmark (an export: runs/samples/...)
    logdir: Optional[str] = None
    picture_samples: int = 32
    # Also measure every method with incremental ARM calls: False, True (the default window) or
    # the window's rows (`tfps.sampling.incremental.sampler_arms`).
    incremental: Union[bool, int] = False


def checked_methods(loaded, options, strategy=None):
    """The methods to measure; ValueError naming an unknown one (also of the scheduling rows), a
    model that cannot run on the replicas of `strategy` (an export), or `incremental` on an
    export or on another ARM than a PixelCNN."""
    replicated.check_replicable(loaded.sampler, strategy)
    if options.incremental and loaded.is_export:
        raise ValueError(
            "incremental calls need a run directory; an export makes the ARM calls chosen at "
            "export (launch.export --incremental)"
        )
    arch = loaded.architecture.get("arch", "pixelcnn")
    if options.incremental and arch != "pixelcnn":
        raise ValueError(f"incremental calls are for PixelCNN models only, got arch {arch!r}")
    sampler = loaded.sampler
    methods = list(options.methods or getattr(sampler, "all_methods", sampler.methods))
    scheduled = list(options.scheduled_methods) if options.scheduled_samples else []
    for method in methods + scheduled:
        loaded.sampler.check_method(method)
    return methods


def title(loaded, jit_compile=False, replicas=1):
    """The table's title: dataset, d, K, the network, and how it was run (on `replicas`)."""
    sampler, architecture, heads = loaded.sampler, loaded.architecture, loaded.heads
    dataset = (loaded.training.get("dataset") or {}).get("name", "?")
    scales = architecture.get("num_scales", 1)
    if architecture.get("arch", "pixelcnn") == "pixelcnn":
        network = (
            f"{architecture['num_resnets']} resnets x {architecture['filters']} filters"
            f"{'' if scales == 1 else f' x {scales} scales'}"
        )
    else:  # another ARM (tfps.models.arms): its name and its scalar options
        scalars = {k: v for k, v in sorted(architecture.items()) if k != "num_categories"}
        shown = [f"{k} {v}" for k, v in scalars.items() if type(v) in (int, float)]
        network = f"{architecture['arch']} ({', '.join(shown)})"
    text = (
        f"{dataset}: d = {sampler.num_variables}, K = {sampler.num_categories}, {network}"
        f"{', through the SavedModel' if loaded.is_export else ''}"
        f"{' with incremental ARM calls' if getattr(sampler, 'incremental', False) else ''}"
        f"{'' if heads is None else f', {heads.method} heads T={heads.steps}'}"
        f"{', XLA' if jit_compile else ''}"
    )
    if replicas > 1:
        text += (
            f"; batch B split over {replicas} replicas (mirrored), B/{replicas} each in "
            f"parallel: time per batch of B, ARM calls of the slowest replica (not summed), the "
            f"TFP peer and batch-1 scheduling column on one device"
        )
    if loaded.decoder is not None:
        text = f"Table 2 format, ARM on the latents of an autoencoder: {text}"
    return text


def run_benchmark(loaded, model_path, options, log=print, strategy=None):
    """Measures `loaded` (a `tfps.serving.loading.Loaded` of `model_path`), writes the results and
    the pictures (see the module doc) and returns the Markdown table.

    `strategy`: a `tf.distribute` strategy of R replicas
    (`tfps.distribute.replicated.SAMPLING_STRATEGIES`; `loaded` made in its scope). "Batch B" stays
    the number of samples per timed batch: each is split into R contiguous shares, one per replica,
    sampled in parallel; the ARM calls are the slowest replica's, which equal the one-device calls
    of the batch, as do the samples. The scheduling rows spread their N samples likewise
    (`tfps.evaluation.scheduling_report.calls_per_sample_report`).
    """
    sampler, architecture, heads = loaded.sampler, loaded.architecture, loaded.heads
    methods = checked_methods(loaded, options, strategy)
    seeds = range(options.num_seeds)
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    text = title(loaded, options.jit_compile, replicas)
    if options.best_of > 1:
        text += f"; each seed's time the fastest of {options.best_of} runs"
    log(f"benchmarking {text}")
    exported_choice = None
    if loaded.is_export:  # the export's own choice (launch.export --incremental)
        exported_choice = loaded.description.get("incremental")
        log(incremental_choice.describe_export(loaded.description))
    results = {}
    incremental = incremental_sampler(model_path, options, strategy)
    if incremental is not None:
        text += f"; '(incremental)' rows: windows of {incremental.incremental_rows} rows"
    rows = benchmarking.benchmark_sampler(
        sampler,
        methods,
        options.batch_sizes,
        seeds,
        results=results,
        incremental_sampler=incremental,
        strategy=strategy,
        best_of=options.best_of,
    )
    # Table 1 names learned rows by their window: "learned (T=20)".
    labels = {} if heads is None else {heads.method: f"{heads.method} (T={heads.steps})"}
    for row in rows:
        row.method = labels.get(row.method, row.method)
    rows += peer_rows(sampler, architecture, options, rows)
    reports = scheduling_reports(sampler, options, strategy, log)
    footer = scheduling_report.markdown_rows(reports)
    decode_times = {}
    if loaded.decoder is not None:
        decode_times = benchmarking.time_decode(loaded.decoder, options.batch_sizes, seeds)
        footer = "\n\n".join(f for f in (footer, benchmarking.decode_time_line(decode_times)) if f)
    output = output_prefix(model_path, options)
    dataset = (loaded.training.get("dataset") or {}).get("name", "?")
    table = benchmarking.write_results(
        rows,
        output,
        text,
        extra={
            "model": model_path,
            "dataset": dataset,
            "scheduling": reports,
            "decode_seconds": {str(b): list(t) for b, t in decode_times.items()},
            "replicas": replicas,
            "export_incremental": exported_choice,
            "incremental_rows": incremental and incremental.incremental_rows,
        },
        footer=footer,
    )
    log(table)
    log(f"wrote {output}.md and {output}.json")
    write_inspections(rows, results, sampler, output, options, loaded.step, labels, log)
    return table


def incremental_sampler(model_path, options, strategy=None):
    """The same checkpoint with incremental ARM calls (`options.incremental`), made in the scope of
    `strategy`; None without `options.incremental`."""
    if not options.incremental:
        return None
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        loaded = loading.load(model_path, options.jit_compile, incremental=options.incremental)
    return loaded.sampler


def peer_rows(sampler, architecture, options, rows):
    """The TFP PixelCNN peer's rows (a PixelCNN only, with `options.tfp_peer`), its speedups
    against the `ancestral` rows of `rows`; [] otherwise."""
    if not options.tfp_peer or architecture.get("arch", "pixelcnn") != "pixelcnn":
        return []
    peer = benchmarking.tfp_pixelcnn_peer(
        sampler.image_shape,
        sampler.num_categories,
        architecture["num_resnets"],
        architecture["filters"],
        architecture.get("num_scales", 1),
    )
    ancestral = {r.batch_size: r.time_mean for r in rows if r.method == "ancestral"}
    return benchmarking.benchmark_tfp_peer(
        peer,
        sampler.num_variables,
        options.batch_sizes,
        range(options.peer_seeds or options.num_seeds),
        reference_times=ancestral,
    )


def scheduling_reports(sampler, options, strategy=None, log=print):
    """One `calls_per_sample_report` per scheduled method (none with `scheduled_samples=0`)."""
    reports = []
    for method in options.scheduled_methods if options.scheduled_samples else []:
        log(
            f"scheduling rows: {method}, N={options.scheduled_samples}, B={options.scheduled_slots}"
        )
        reports.append(
            scheduling_report.calls_per_sample_report(
                sampler,
                options.scheduled_samples,
                options.scheduled_slots,
                method,
                seed=0,
                repeats=options.repeats,
                strategy=strategy,
            )
        )
    return reports


def output_prefix(model_path, options):
    """Where the results go (`options.output`, default `<run>/benchmark`; an export's go to its
    samples directory, never inside the export), its folder created."""
    exported_to = export.default_samples_dir(model_path)
    output = options.output or os.path.join(exported_to or model_path.rstrip("/"), "benchmark")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    return output


def write_inspections(rows, results, sampler, output, options, step, labels, log=print):
    """Pictures (PNG, and TensorBoard with `options.logdir`) and scalars per method."""
    batch = max(b for _, b in results)
    ancestral = summaries.concat_results(results[(predictive.ANCESTRAL, batch)])
    for method in dict.fromkeys(m for m, _ in results):
        result = summaries.concat_results(results[(method, batch)])
        label = labels.get(method, method)
        row = next(r for r in rows if (r.method, r.batch_size) == (label, batch))
        inspection = summaries.inspect(
            result,
            method,
            sampler.num_categories,
            seconds_per_sample=row.time_mean / batch,
            seconds_description=(
                f"Seconds per sample at batch size {batch}: mean time per batch "
                f"over {row.seeds} seeds / {batch}, tracing excluded."
            ),
            baseline=summaries.determined_at(ancestral, predictive.ANCESTRAL),
            max_samples=options.picture_samples,
        )
        pngs = summaries.write_pngs(f"{output}_", method, inspection)
        log(f"{method}: wrote {', '.join(pngs)}")
        if options.logdir:
            table1 = {}
            for r in (r for r in rows if r.method == label):
                table1[f"table1/arm_calls_percent_b{r.batch_size}"] = r.calls_percent_mean
                table1[f"table1/seconds_per_batch_b{r.batch_size}"] = r.time_mean
                table1[f"table1/speedup_b{r.batch_size}"] = r.speedup
            run = summaries.run_dir(options.logdir, summaries.BENCHMARK_RUN, method)
            summaries.write_tensorboard(run, step, inspection, extra_scalars=table1)
            log(f"{method}: wrote TensorBoard summaries to {run} (step {step})")
