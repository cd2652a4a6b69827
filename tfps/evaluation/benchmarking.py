"""Measuring samplers the way [1, Table 1] reports them.

For each method and batch size: ARM calls as a percentage of d, time per batch, mean and
Bessel-corrected standard deviation over seeds 0-9, and speedup = mean time of `ancestral` / mean
time of the method, every figure measured in the same run. Tracing and compilation are excluded:
each (method, batch size) is run once before it is timed (`tfps.evaluation.timing`), on a short
input that leaves one free variable per row (`batch_inputs`).

A second baseline is the peer implementation `tfp.distributions.PixelCNN(...).sample` on a network
of the same depth and width (one scale, logistic-mixture outputs: what TFP ships), which makes
H * W + 1 network calls per batch. `compare_speed` times an export against the library, and
`time_decode` the decoder of an ARM on autoencoder latents [1, sec. 4.2, Table 2].

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import dataclasses
import functools
import json
import os

import numpy as np
import tensorflow as tf

from tfps.distribute import replicated as replicated_lib
from tfps.evaluation import timing
from tfps.sampling import noise as noise_lib

TFP_PIXELCNN = "tfp.PixelCNN (peer)"


@dataclasses.dataclass
class Row:
    """One line of the table: a method at a batch size, over seeds."""

    method: str
    batch_size: int
    calls_percent_mean: float
    calls_percent_std: float
    time_mean: float
    time_std: float
    speedup: float = float("nan")
    seeds: int = 0
    speedup_cached: float = float("nan")  # against `ancestral_cached`, where it was measured

    def to_dict(self):
        return dataclasses.asdict(self)


def batch_inputs(sampler, batch_size):
    """`(draw, warm_up)`: inputs for timing `sampler.loop_function`s on batches of `batch_size`
    (`tfps.evaluation.timing.over_seeds`; a run takes the tuple `(noise, evidence, evidence_mask)`).

    `draw(seed)`: that seed's noise, without evidence. `warm_up`: the untimed first run's input,
    `timing.WARM_UP_SEED`'s noise with every variable observed (as 0) but the first of each image
    row and the last. It runs the same traced (and compiled) loop, through every row and the
    loop's body, in at most H + 1 ARM calls instead of up to d: at 32x32x3 and 8 bits a warm-up
    of a slow method no longer costs as much as the run it prepares.
    """
    shape = (int(batch_size),) + tuple(sampler.event_shape)
    evidence, no_evidence = tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool)
    height, width, channels = sampler.image_shape
    free = np.zeros((height, width * channels), bool)
    free[:, 0] = True
    free[-1, -1] = True
    observed = np.broadcast_to(~free.reshape((1,) + tuple(sampler.event_shape)), shape)

    def draw(seed):
        return noise_lib.gumbel_noise(shape + (sampler.num_categories,), seed)

    warm_up = (draw(timing.WARM_UP_SEED), evidence, tf.constant(observed))
    return lambda seed: (draw(seed), evidence, no_evidence), warm_up


def on_inputs(loop):
    """`inputs -> loop(*inputs)`: a `loop_function` as a run of `batch_inputs`' tuples."""
    return lambda inputs: loop(*inputs)


def time_sampler(sampler, method, batch_size, seeds, results=None, strategy=None, best_of=1):
    """Runs `method` once per seed on fresh noise. Returns (calls as % of d, seconds) per seed.

    Noise is drawn before the clock starts; the first (tracing) run is excluded; with `best_of`
    > 1 each seed's time is the fastest of that many runs (`tfps.evaluation.timing.best_timed`). If
    `results` is a list, each seed's `SampleResult` is appended to it (for
    `tfps.evaluation.summaries`). With a `strategy` of R > 1 replicas each batch is split into R
    contiguous shares sampled in parallel, one plain batch per replica, and the calls are the
    slowest replica's (`tfps.distribute.replicated.replicated_sampler`), which equal the one-device
    calls of the batch.
    """
    draw, warm_up = batch_inputs(sampler, batch_size)
    if strategy is None or strategy.num_replicas_in_sync == 1:
        run = on_inputs(sampler.loop_function(method))
    else:  # the replicas sample noise alone: their warm-up is a whole run
        replicated = replicated_lib.replicated_sampler(sampler, strategy, method, calls="max")
        run, warm_up = lambda inputs: replicated(inputs[0]), None  # noqa: E731
    calls, seconds = [], []
    timings = timing.over_seeds(draw, seeds, run, warm_up=warm_up, best_of=best_of)
    for _, [(result, elapsed)] in timings:
        seconds.append(elapsed)
        calls.append(100.0 * int(result.arm_calls) / sampler.num_variables)
        if results is not None:
            results.append(result)
    return calls, seconds


def benchmark_sampler(
    sampler,
    methods,
    batch_sizes=(1, 32),
    seeds=range(10),
    log=print,
    results=None,
    incremental_sampler=None,
    strategy=None,
    best_of=1,
):
    """Table 1 rows for `methods` (ancestral is always measured first, as the reference).

    If `results` is a dict, `results[(method, batch_size)]` receives the list of `SampleResult`s,
    one per seed. `incremental_sampler`: the same ARM with incremental calls
    (`tfps.sampling.incremental`); each method is measured with it too, as the row
    `<method> (incremental)`. Where `ancestral_cached` is measured, every row also gets its
    speedup against it (`speedup_cached`). `strategy`: spread each batch over its replicas
    (`time_sampler`). `best_of`: each seed's time is the fastest of that many runs (default 1,
    the paper's protocol; more steadies the ratios of short loops on a loaded machine).
    """
    best_of = timing.check_best_of(best_of)
    methods = ["ancestral"] + [m for m in methods if m != "ancestral"]
    runs = [(method, sampler, method) for method in methods]
    if incremental_sampler is not None:
        runs += [
            (f"{method} (incremental)", incremental_sampler, method)
            for method in methods
            if method != "ancestral_cached"
        ]
    rows = []
    for batch_size in batch_sizes:
        reference, batch_rows = None, []
        for name, runner, method in runs:
            kept = None
            if results is not None and runner is sampler:
                kept = results.setdefault((method, batch_size), [])
            calls, seconds = time_sampler(
                runner, method, batch_size, list(seeds), kept, strategy, best_of
            )
            row = Row(
                name,
                batch_size,
                *timing.mean_std(calls),
                *timing.mean_std(seconds),
                seeds=len(seconds),
            )
            reference = reference or row.time_mean
            row.speedup = reference / row.time_mean
            batch_rows.append(row)
            if log:
                log(
                    f"  batch {batch_size:>3} {name:<24} calls {row.calls_percent_mean:6.1f}% "
                    f"time {row.time_mean:.4f}s speedup {row.speedup:.1f}x"
                )
        cached = [r.time_mean for r in batch_rows if r.method == "ancestral_cached"]
        for row in batch_rows:
            row.speedup_cached = cached[0] / row.time_mean if cached else float("nan")
        rows += batch_rows
    return rows


def tfp_pixelcnn_peer(image_shape, num_categories, num_resnets, filters, num_scales=1):
    """The peer baseline: TFP's PixelCNN++ distribution with a network of the same size.

    As many hierarchies as tfps's ARM has scales, the same number of resnets and filters, values
    in [0, K - 1]. Untrained: only its sampling time matters here.
    """
    import tensorflow_probability as tfp  # heavy import, only when the peer row is asked for

    return tfp.distributions.PixelCNN(
        image_shape=tuple(image_shape),
        num_resnet=num_resnets,
        num_hierarchies=num_scales,
        num_filters=filters,
        num_logistic_mix=5,
        dropout_p=0.0,
        use_weight_norm=False,
        use_data_init=False,
        high=num_categories - 1,
    )


def benchmark_tfp_peer(
    peer, num_variables, batch_sizes=(1, 32), seeds=range(10), log=print, reference_times=None
):
    """Rows for `peer.sample`; its ARM calls are H * W + 1 per batch (one per pixel + initial)."""
    height, width, _ = peer.event_shape
    calls_percent = 100.0 * (height * width + 1) / num_variables
    rows = []
    for batch_size in batch_sizes:
        # TFP's PixelCNN takes only stateful seeds; its samples are not compared, only timed.
        sample = tf.function(functools.partial(peer.sample, batch_size))
        _, seconds = timing.repeated(sample, len(seeds))
        row = Row(
            TFP_PIXELCNN,
            batch_size,
            calls_percent,
            0.0,
            *timing.mean_std(seconds),
            seeds=len(seconds),
        )
        if reference_times and batch_size in reference_times:
            row.speedup = reference_times[batch_size] / row.time_mean
        rows.append(row)
        if log:
            log(f"  batch {batch_size:>3} {TFP_PIXELCNN:<12} time {row.time_mean:.4f}s")
    return rows


def markdown_table(rows, title=None):
    """Rows as the paper's Table 1: one line per method, one column group per batch size."""
    batch_sizes = sorted({row.batch_size for row in rows})
    methods = list(dict.fromkeys(row.method for row in rows))
    by_key = {(row.method, row.batch_size): row for row in rows}
    cached = any(not np.isnan(row.speedup_cached) for row in rows)
    columns = ["ARM calls", "Time s", "Speedup"] + (["vs ancestral_cached"] if cached else [])
    header = (
        "| Method | "
        + " | ".join(f"{column} (B={b})" for b in batch_sizes for column in columns)
        + " |"
    )
    lines = ([f"**{title}**", ""] if title else []) + [
        header,
        "|---|" + "---|" * len(columns) * len(batch_sizes),
    ]
    for method in methods:
        cells = []
        for b in batch_sizes:
            row = by_key.get((method, b))
            if row is None:
                cells.append(" | ".join("-" * len(columns)))
                continue
            speedups = [row.speedup] + ([row.speedup_cached] if cached else [])
            cells.append(
                f"{row.calls_percent_mean:.1f}% ± {row.calls_percent_std:.1f} | "
                f"{row.time_mean:.3f} ± {row.time_std:.3f} | "
                + " | ".join("-" if np.isnan(s) else f"{s:.1f}x" for s in speedups)
            )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(path_prefix, table, record):
    """Writes `<prefix>.md` (the Markdown `table`) and `<prefix>.json` (the JSON-able `record`),
    making the prefix's directory if missing: what every table launcher writes."""
    os.makedirs(os.path.dirname(os.path.abspath(path_prefix)), exist_ok=True)
    with open(path_prefix + ".md", "w") as f:
        f.write(table + "\n")
    with open(path_prefix + ".json", "w") as f:
        json.dump(record, f, indent=2)


def write_results(rows, path_prefix, title, extra=None, footer=None):
    """Writes `<prefix>.md` (the table, then `footer`) and `<prefix>.json` (rows and `extra`)."""
    table = markdown_table(rows, title) + (f"\n\n{footer}" if footer else "")
    record = {"title": title, "rows": [r.to_dict() for r in rows], **(extra or {})}
    write_table(path_prefix, table, record)
    return table


def compare_speed(
    exported, library, methods=("ancestral", "fpi"), batch_sizes=(1, 32), seeds=range(10)
):
    """Times `exported` (a `tfps.serving.exported_sampler.ExportedSampler`) against `library` (a
    `PredictiveSampler` of the same model): both run `loop_function(method)` on the same noise,
    alternating seed by seed (`tfps.evaluation.timing.over_seeds`); the first (tracing) run is
    excluded.

    Returns one dict per (batch size, method) with ARM calls (% of d), mean, std and median
    seconds per batch for each, and `ratio` = median SavedModel time / median library time.
    Raises AssertionError if the two disagree on a sample or on the number of ARM calls.
    """
    rows = []
    for batch_size in batch_sizes:
        draw, warm_up = batch_inputs(library, batch_size)
        for method in methods:
            names = ("library", "saved_model")
            runs = [on_inputs(s.loop_function(method)) for s in (library, exported)]
            seconds = {name: [] for name in names}
            calls = []
            for seed, timings in timing.over_seeds(draw, seeds, *runs, warm_up=warm_up):
                for name, (_, elapsed) in zip(names, timings):
                    seconds[name].append(elapsed)
                (lib, _), (exp, _) = timings
                if int(lib.arm_calls) != int(exp.arm_calls) or not np.array_equal(
                    lib.samples.numpy(), exp.samples.numpy()
                ):
                    raise AssertionError(
                        f"{method} at batch {batch_size}, seed {seed}: the "
                        f"SavedModel and the library disagree"
                    )
                calls.append(100.0 * int(lib.arm_calls) / library.num_variables)
            row = {
                "method": method,
                "batch_size": batch_size,
                "seeds": len(calls),
                "calls_percent": float(np.mean(calls)),
            }
            for name, values in seconds.items():
                row[f"{name}_mean_s"], row[f"{name}_std_s"] = timing.mean_std(values)
                row[f"{name}_median_s"] = float(np.median(values))
            row["ratio"] = row["saved_model_median_s"] / row["library_median_s"]
            rows.append(row)
    return rows


def time_decode(decoder, batch_sizes=(1, 32), seeds=range(10)):
    """Seconds to decode a batch of latents (excluding tracing), per batch size:
    `{batch_size: (mean, Bessel-corrected std)}` over seeds; latents drawn uniformly.

    `decoder`: a `tfps.serving.decoder.LatentDecoder` (`function`, `latent_shape`,
    `latent_categories`).
    """
    results = {}
    for batch_size in batch_sizes:
        shape = (int(batch_size),) + tuple(decoder.latent_shape)

        def draw(seed, shape=shape):
            return tf.random.stateless_uniform(
                shape, [0, seed], maxval=decoder.latent_categories, dtype=tf.int32
            )

        seconds = [
            elapsed for _, [(_, elapsed)] in timing.over_seeds(draw, seeds, decoder.function)
        ]
        results[int(batch_size)] = timing.mean_std(seconds)
    return results


def decode_time_line(decode_times):
    """One markdown line for `time_decode`'s result: the decode time per batch size."""
    cells = ", ".join(
        f"B={b}: {mean:.4f} ± {std:.4f} s" for b, (mean, std) in sorted(decode_times.items())
    )
    return f"Decoding a batch of sampled latents to images (not included above): {cells}."
