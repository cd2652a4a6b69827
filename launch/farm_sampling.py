"""Exact predictive sampling against FARM's approximate parallel sampling, on one trained family.

    python -m launch.farm_sampling --model=runs/farm --num_samples=360 --ks=1,2,4,8

On a run of a family of orderings (arch farm_made or farm_pixelcnn, e.g.
configs/farm_pixelcnn_digits28.py) this draws
`--num_samples` samples for the same Gumbel noise with each exact method of `--methods` (in the
family's first ordering, `tfps.models.orderings.sample_in_ordering`) and with FARM's parallel
sampling from the first k orderings for each k of `--ks` (`tfps.models.farm_sampling`;
approximate for k > 1, ancestral in the first ordering for k = 1) and FARM's diagonal schedule in
the first ordering for each skew of `--skews` (`farm_sampling.diagonal_sample`: exact from the
skew the model's structure needs, `farm_sampling.required_skew`, approximate below it or where
that skew cannot be derived; default that skew unless it is the width read, and 4, FARM's ~5
max(H, W) rounds), and writes to `--output_dir` (default
`<run>/farm_sampling`):

- `farm_sampling.md` / `.json`: per row, ARM calls (model evaluations of the batch: one per
  ordering and round for parallel sampling), rounds, seconds (after a warm-up on the same batch
  size), the Frechet distance to the test images in the features of a digit classifier trained on
  the embedded training digits (`tfps.evaluation.frechet`; its test accuracy, and the distance of
  the validation images to the test images, the floor, in the header) and whether the row is
  exact;
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

import os
import sys
import time

if __package__ in (None, ""):  # `python launch/farm_sampling.py`: the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from launch import quality
from tfps.evaluation import benchmarking, pictures
from tfps.models import farm_sampling, orderings
from tfps.sampling import noise as noise_lib
from tfps.train import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run of a family of orderings.", required=True)
flags.DEFINE_integer("num_samples", 360, "Samples per row (one batch).", lower_bound=2)
flags.DEFINE_list("methods", ["ancestral", "fpi"], "Exact methods, in the first ordering.")
flags.DEFINE_list(
    "ks", [], "Orderings of each parallel-sampling row (default: 1, 2, 4, ... and all of them)."
)
flags.DEFINE_list(
    "skews",
    None,
    "Skews of the diagonal-schedule rows, in the first ordering (default: the exact one, "
    "derived from the model's structure, unless it is the width (raster order: a MADE), and 4, "
    "FARM's ~5 max(H, W) rounds, if smaller; 'none': no row).",
)
flags.DEFINE_integer("classifier_steps", 600, "Training steps of the digit classifier.")
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise.")
flags.DEFINE_string("output_dir", None, "Where to write (default: <model>/farm_sampling).")
SHOWN = 16
FARM_SKEW = 4  # FARM's ~5 max(H, W) rounds [1, sec. 4.5]: skew (H - 1) + W


def _powers_of_two(count):
    """1, 2, 4, ... below `count`, and `count`."""
    return [2**i for i in range(count.bit_length()) if 2**i < count] + [count]


def _exact_run(model, sampler, method):
    def run(noise):
        result = orderings.sample_in_ordering(sampler, model.orderings[0], noise, method)
        return result.samples.numpy(), int(result.arm_calls), int(result.arm_calls)

    return run


def _parallel_run(model, k):
    def run(noise):
        result = farm_sampling.parallel_sample(model, noise, k)
        return result.samples, result.evaluations, result.rounds

    return run


def _diagonal_run(model, skew, required):
    def run(noise):
        result = farm_sampling.diagonal_sample(model, noise, 0, skew, required)
        return result.samples, result.evaluations, result.rounds

    return run


def _skews(model):
    """`(skews, required skew)` of the diagonal rows (`--skews`), none if the first ordering is
    not a raster variant (MADE's random orderings) and the flag names none. The required skew is
    None where the model's structure does not give it: then only `--skews` rows, approximate."""
    if FLAGS.skews == ["none"]:
        return [], None
    try:
        width = farm_sampling.read_order(model, 0)[1][1]
    except ValueError:
        if FLAGS.skews:
            raise
        return [], None
    try:
        required = farm_sampling.required_skew(model, 0)
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


def _rows(model, sampler, ks, diagonal, noise, score):
    """The table's rows, each timed after a warm-up on the same noise."""
    runs = [(m if m == "ancestral" else f"{m} (predictive sampling)", True,
             _exact_run(model, sampler, m)) for m in FLAGS.methods]  # fmt: skip
    for k in ks:
        name = f"FARM parallel, k={k}" + (" (= ancestral)" if k == 1 else "")
        runs.append((name, k == 1, _parallel_run(model, k)))
    skews, required = diagonal
    for skew in skews:
        name = f"diagonal schedule, skew {skew}" + (" (derived)" if skew == required else "")
        exact = required is not None and skew >= required  # proven by the model's structure
        runs.append((name, exact, _diagonal_run(model, skew, required)))
    rows, shown = [], []
    for name, exact, run in runs:
        run(noise)  # traces
        start = time.perf_counter()
        samples, calls, rounds = run(noise)  # on the host: numpy samples
        seconds = time.perf_counter() - start
        rows.append(dict(name=name, exact=exact, arm_calls=calls, rounds=rounds, seconds=seconds,
                         frechet=score(samples) if score else None))  # fmt: skip
        shown.append(samples[:SHOWN])
    return rows, shown


def _table(title, header, rows):
    lines = [f"**{title}**", "", header, "",
             "| sampling | exact | ARM calls | rounds | seconds | Frechet distance |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        fd = "-" if r["frechet"] is None else f"{r['frechet']:.2f}"
        lines.append(f"| {r['name']} | {'yes' if r['exact'] else 'NO (approximate)'} | "
                     f"{r['arm_calls']} | {r['rounds']} | {r['seconds']:.2f} | {fd} |")  # fmt: skip
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        model, config = training.load_trained(FLAGS.model)
        if not all(k.isdigit() for k in FLAGS.ks):
            raise ValueError(f"--ks must be numbers of orderings, got {','.join(FLAGS.ks)}")
        family = farm_sampling.ordering_indices(model)  # a model without orderings fails here
        ks = [int(k) for k in FLAGS.ks] or _powers_of_two(len(family))
        for k in ks:
            farm_sampling.ordering_indices(model, k)
        sampler = orderings.ordered_sampler(model, 0)
        diagonal = _skews(model)
        bad = [m for m in FLAGS.methods if m not in sampler.methods]
        if bad:
            raise ValueError(f"unknown methods {bad}; the sampler has {', '.join(sampler.methods)}")
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    dataset = config["train"]["dataset"]
    shape = (FLAGS.num_samples,) + tuple(model.event_shape) + (model.num_categories,)
    noise = noise_lib.gumbel_noise(shape, FLAGS.seed).numpy()
    score, header = quality.scorer(dataset, FLAGS.classifier_steps, int(model.num_categories))
    rows, shown = _rows(model, sampler, ks, diagonal, noise, score)
    title = (f"{os.path.basename(os.path.normpath(config['logdir']))}: {dataset}, "
             f"{FLAGS.num_samples} samples, batch {FLAGS.num_samples}")  # fmt: skip
    table = _table(title, header, rows)
    output_dir = FLAGS.output_dir or os.path.join(config["logdir"], "farm_sampling")
    base = os.path.join(output_dir, "farm_sampling")
    benchmarking.write_table(base, table, {"title": title, "quality": header, "rows": rows})
    pictures.write_rows(base + ".png", shown, model.num_categories)
    print(table)
    print(f"wrote {base}.md, .json, .png")


if __name__ == "__main__":
    app.run(main)
