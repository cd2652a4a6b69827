"""Exact predictive sampling against FARM's parallel sampling and diagonal schedule, one family.

    python -m launch.farm_sampling --model=runs/farm --num_samples=360 --ks=1,2,4,8

On a run of a family of orderings (arch farm_made or farm_pixelcnn, e.g.
configs/farm_pixelcnn_digits28.py) this draws `--num_samples` samples for the same Gumbel noise
with each exact method of `--methods` (in the family's first ordering,
`tfps.sampling.ordered_view.sample_in_ordering`; `fpi` is predictive sampling [2]), with FARM's
parallel sampling from the first k orderings for each k of `--ks`
(`tfps.sampling.farm_parallel.parallel_sample`; approximate for k > 1, ancestral in the first
ordering for k = 1) and with FARM's diagonal schedule in the first ordering for each skew of
`--skews` (`farm_parallel.diagonal_sample`: exact from the skew the model's structure needs,
`farm_parallel.required_skew`, approximate below it or where that skew cannot be derived; default
that skew unless it is the width read, and 4, FARM's ~5 max(H, W) rounds). Every row is a
compiled loop (a `tf.while_loop` in a `tf.function`), timed plain and, with `--xla`, compiled
with XLA (`jit_compile`). It writes to `--output_dir` (default `<run>/farm_sampling`):

- `farm_sampling.md` / `.json`: per row, ARM calls (model evaluations of the batch: one per
  ordering and round for parallel sampling), rounds, seconds plain and XLA (the fastest of
  `--best_of` runs after a warm-up, `tfps.evaluation.timing.best_timed`; the .json says whether
  the XLA samples equal the plain ones), the Frechet distance of the plain samples to the test
  images in the features of a digit classifier trained on the embedded training digits
  (`tfps.evaluation.frechet`; its test accuracy, and the distance of the validation images to
  the test images, the floor, in the header) and whether the row is exact;
- `farm_sampling.png`: the first 16 samples of every row, one row each.

The Frechet distance needs labelled images: the embedded digits or `photos32`
(`tfps.data.builtin.labels`), or an .npz with `train_labels` and `test_labels`
(`tfps.data.sources.npz_labels`); for another dataset the column is left out.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Auke Wiggers, Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models. In
     ICML, 2020.
"""

import functools
import os
import sys

if __package__ in (None, ""):  # `python launch/farm_sampling.py`: the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from tfps.data import sources
from tfps.evaluation import benchmarking, frechet, pictures, timing
from tfps.sampling import farm_parallel, ordered_view, predictive
from tfps.sampling import noise as noise_lib
from tfps.train import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run of a family of orderings.", required=True)
flags.DEFINE_integer("num_samples", 360, "Samples per row (one batch).", lower_bound=2)
flags.DEFINE_list("methods", ["ancestral", "fpi"], "Exact methods, in the first ordering.")
flags.DEFINE_list(
    "ks",
    [],
    "Orderings of each parallel-sampling row (default: 1, 2, 4, ... and all of them; 'none': no "
    "row).",
)
flags.DEFINE_list(
    "skews",
    None,
    "Skews of the diagonal-schedule rows, in the first ordering (default: the exact one, "
    "derived from the model's structure, unless it is the width (raster order: a MADE), and 4, "
    "FARM's ~5 max(H, W) rounds, if smaller; 'none': no row).",
)
flags.DEFINE_bool("xla", True, "Also time every row compiled with XLA (jit_compile).")
flags.DEFINE_integer(
    "best_of", 3, "Timed runs per row and compilation; the fastest.", lower_bound=1
)
flags.DEFINE_integer("classifier_steps", 600, "Training steps of the digit classifier.")
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise.")
flags.DEFINE_string("output_dir", None, "Where to write (default: <model>/farm_sampling).")
SHOWN = 16
FARM_SKEW = 4  # FARM's ~5 max(H, W) rounds [1, sec. 4.5]: skew (H - 1) + W


def _powers_of_two(count):
    """1, 2, 4, ... below `count`, and `count`."""
    return [2**i for i in range(count.bit_length()) if 2**i < count] + [count]


def _exact_run(model, method, jit_compile):
    """`noise -> SampleResult` of `method` in the first ordering."""
    view = ordered_view.in_ordering(model, 0)
    sampler = predictive.sampler_for_model(view, jit_compile=jit_compile)
    return lambda noise: ordered_view.sample_in_ordering(sampler, view.ordering, noise, method)


def _farm_run(sample, jit_compile):
    """`noise -> ParallelSample` of a `farm_parallel` sampler."""
    return lambda noise: sample(noise, jit_compile=jit_compile)


def _counts(result):
    """`(ARM calls, rounds)` of a `SampleResult` or a `ParallelSample` (model evaluations)."""
    if hasattr(result, "evaluations"):
        return result.evaluations, result.rounds
    return int(result.arm_calls), int(result.arm_calls)


def _skews(model):
    """`(skews, required skew)` of the diagonal rows (`--skews`), none if the first ordering is
    not a raster variant (MADE's random orderings) and the flag names none. The required skew is
    None where the model's structure does not give it: then only `--skews` rows, approximate."""
    if FLAGS.skews == ["none"]:
        return [], None
    try:
        width = farm_parallel.read_order(model, 0)[1][1]
    except ValueError:
        if FLAGS.skews:
            raise
        return [], None
    try:
        required = farm_parallel.required_skew(model, 0)
    except ValueError:
        required = None
    if FLAGS.skews:
        if not all(s.isdigit() for s in FLAGS.skews):
            raise ValueError(f"--skews must be positive integers or none, got {FLAGS.skews}")
        if not all(1 <= int(s) <= width for s in FLAGS.skews):
            raise ValueError(f"--skews must be in [1, {width}] (the width read), got {FLAGS.skews}")
        return [int(s) for s in FLAGS.skews], required
    if required is None:
        return [], None
    skews = [s for s in (required, FARM_SKEW) if s < width and s <= required]
    return sorted(set(skews), reverse=True), required


def _runs(model, ks, diagonal):
    """`(name, exact, make)` per row; `make(jit_compile)` is the row's run."""
    runs = [(m if m == "ancestral" else f"{m} (predictive sampling)", True,
             functools.partial(_exact_run, model, m)) for m in FLAGS.methods]  # fmt: skip
    for k in ks:
        name = f"FARM parallel, k={k}" + (" (= ancestral)" if k == 1 else "")
        sample = functools.partial(farm_parallel.parallel_sample, model, orderings=k)
        runs.append((name, k == 1, functools.partial(_farm_run, sample)))
    skews, required = diagonal
    for skew in skews:
        name = f"diagonal schedule, skew {skew}" + (" (derived)" if skew == required else "")
        exact = required is not None and skew >= required  # proven by the model's structure
        sample = functools.partial(
            farm_parallel.diagonal_sample, model, ordering_index=0, skew=skew, required=required
        )
        runs.append((name, exact, functools.partial(_farm_run, sample)))
    return runs


def _rows(runs, noise, score):
    """The table's rows: each run plain and (`--xla`) XLA-compiled, the fastest of `--best_of`
    timed runs after a warm-up on the same noise; the samples of the plain run."""
    rows, shown = [], []
    for name, exact, make in runs:
        row, plain = dict(name=name, exact=exact), None
        for jit_compile in (False, True) if FLAGS.xla else (False,):
            run = make(jit_compile)
            timing.to_host(run(noise))  # traces (and compiles)
            result, seconds = timing.best_timed(run, noise, FLAGS.best_of)
            logging.info("%s%s: %.2f s", name, " (XLA)" if jit_compile else "", seconds)
            samples = result.samples.numpy()
            if jit_compile:
                row.update(seconds_xla=seconds, xla_same_samples=bool((samples == plain).all()))
                continue
            plain, (calls, rounds) = samples, _counts(result)
            frechet_distance = score(samples) if score else None
            row.update(arm_calls=calls, rounds=rounds, seconds=seconds, frechet=frechet_distance)
        rows.append(row)
        shown.append(plain[:SHOWN])
    return rows, shown


def _table(title, header, rows):
    lines = [f"**{title}**", "", header, "",
             "| sampling | exact | ARM calls | rounds | seconds | seconds (XLA) | Frechet distance "
             "|", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        fd = "-" if r["frechet"] is None else f"{r['frechet']:.2f}"
        xla = f"{r['seconds_xla']:.2f}" if "seconds_xla" in r else "-"
        exact = "yes" if r["exact"] else "NO (approximate)"
        lines.append(f"| {r['name']} | {exact} | {r['arm_calls']} | {r['rounds']} | "
                     f"{r['seconds']:.2f} | {xla} | {fd} |")  # fmt: skip
    return "\n".join(lines)


def _inputs():
    """`(model, config, runs)` of the flags; ValueError or FileNotFoundError for a bad flag or
    run (before anything is sampled)."""
    model, config = training.load_trained(FLAGS.model)
    ks = [] if FLAGS.ks == ["none"] else FLAGS.ks
    if not all(k.isdigit() for k in ks):
        raise ValueError(f"--ks must be numbers of orderings or none, got {','.join(FLAGS.ks)}")
    family = farm_parallel.ordering_indices(model)  # a model without orderings fails here
    ks = [int(k) for k in ks] or ([] if FLAGS.ks else _powers_of_two(len(family)))
    for k in ks:
        farm_parallel.ordering_indices(model, k)
    methods = predictive.sampler_for_model(ordered_view.in_ordering(model, 0)).methods
    bad = [m for m in FLAGS.methods if m not in methods]
    if bad:
        raise ValueError(f"unknown methods {bad}; the sampler has {', '.join(methods)}")
    return model, config, _runs(model, ks, _skews(model))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        model, config, runs = _inputs()
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    dataset = config["train"]["dataset"]
    shape = (FLAGS.num_samples,) + tuple(model.event_shape) + (model.num_categories,)
    noise = tf.constant(noise_lib.gumbel_noise(shape, FLAGS.seed).numpy())
    labelled = sources.labelled(dataset, int(model.num_categories))
    score, header = frechet.scorer(labelled, FLAGS.classifier_steps)
    rows, shown = _rows(runs, noise, score)
    title = (f"{os.path.basename(os.path.normpath(config['logdir']))}: {dataset}, "
             f"{FLAGS.num_samples} samples, batch {FLAGS.num_samples}")  # fmt: skip
    header += (
        f". Seconds: the fastest of {FLAGS.best_of} runs after a warm-up; every row is "
        "a compiled loop (tf.while_loop in tf.function), plain and XLA (jit_compile)"
    )
    table = _table(title, header, rows)
    output_dir = FLAGS.output_dir or os.path.join(config["logdir"], "farm_sampling")
    base = os.path.join(output_dir, "farm_sampling")
    benchmarking.write_table(base, table, {"title": title, "quality": header, "rows": rows})
    pictures.write_rows(base + ".png", np.asarray(shown), model.num_categories)
    print(table)
    print(f"wrote {base}.md, .json, .png")


if __name__ == "__main__":
    app.run(main)
