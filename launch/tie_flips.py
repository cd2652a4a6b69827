"""How often float rounding flips a sample: the same noise through differently compiled ARM calls.

    python -m launch.tie_flips --model=pretrained/digits --num_samples=1000

Every method returns the ancestral sample of the *same compiled ARM* for the same noise (Wiggers &
Hoogeboom, ICML 2020, eq. 8): that is exact and tested. Another compilation of the same model
(XLA instead of graph kernels, another batch size, windows of rows instead of the full call) rounds
the logits differently, by ~1e-7, and where two categories' logits plus noise are that close the
argmax flips: the sample then differs from that variable on. This launcher counts it for
`--method` (default `fpi`; every method gives the same samples within one compilation) on
`--num_samples` samples of one noise, against plain graph calls at batch `--batch_size`:

- `xla`: the same batches under `jit_compile=True`;
- `batch 1`: each of the first `--single_samples` samples alone;
- `windows`: incremental calls in the smallest window (PixelCNN runs only).

It writes `<output>.md` / `.json`: per comparison, the samples and variables compared, the
samples and variables that differ, and variables that differ per million.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/tie_flips.py`: the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from tfps.evaluation import benchmarking
from tfps.models import pixelcnn
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive
from tfps.train import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run directory.", required=True)
flags.DEFINE_string("method", "fpi", "The sampling method.")
flags.DEFINE_integer("num_samples", 1000, "Samples compared per comparison.", lower_bound=1)
flags.DEFINE_integer("batch_size", 100, "Batch of the reference and XLA runs.", lower_bound=2)
flags.DEFINE_integer("single_samples", 100, "Samples drawn alone (batch 1).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise.")
flags.DEFINE_string("output", None, "Output path without extension (default <model>/tie_flips).")


def _samples(sampler, noise, batch_size):
    parts = [
        sampler.sample(noise[i : i + batch_size], FLAGS.method).samples.numpy()
        for i in range(0, len(noise), batch_size)
    ]
    return np.concatenate(parts)


def _row(name, reference, other):
    flat_ref, flat = reference.reshape(len(other), -1), other.reshape(len(other), -1)
    differ = flat_ref != flat
    variables = flat.size
    return dict(
        comparison=name,
        samples=len(other),
        variables=int(variables),
        samples_differ=int(differ.any(axis=1).sum()),
        variables_differ=int(differ.sum()),
        per_million=float(1e6 * differ.sum() / variables),
    )


def compare(model, noise, batch_size, single_samples):
    """The rows of the table (see the module) for `model` and noise `[N, *event_shape, K]`."""
    plain = predictive.sampler_for_model(model)
    if FLAGS.method not in plain.methods:
        raise ValueError(f"unknown method {FLAGS.method!r}; the sampler has {plain.methods}")
    reference = _samples(plain, noise, batch_size)
    rows = [_row("xla", reference, _samples(predictive.sampler_for_model(model, jit_compile=True),
                                            noise, batch_size))]  # fmt: skip
    if single_samples:
        alone = _samples(plain, noise[:single_samples], 1)
        rows.append(_row("batch 1", reference[:single_samples], alone))
    if isinstance(model, pixelcnn.PixelCNN):
        windows = predictive.sampler_for_model(model, incremental=1)
        rows.append(_row("windows", reference, _samples(windows, noise, batch_size)))
    return rows


def _table(title, rows):
    lines = [
        f"**{title}**",
        "",
        "| against graph calls at the batch | samples | variables | samples that differ "
        "| variables that differ | per million variables |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        counts = (r["samples"], r["variables"], r["samples_differ"], r["variables_differ"])
        cells = " | ".join(str(c) for c in counts)
        lines.append(f"| {r['comparison']} | {cells} | {r['per_million']:.1f} |")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        model, config = training.load_trained(FLAGS.model)
        shape = (FLAGS.num_samples,) + tuple(model.event_shape) + (model.num_categories,)
        noise = noise_lib.gumbel_noise(shape, FLAGS.seed).numpy()
        rows = compare(model, noise, FLAGS.batch_size, min(FLAGS.single_samples, len(noise)))
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    run = os.path.basename(os.path.normpath(config["logdir"]))
    title = (f"{run}: method {FLAGS.method}, {FLAGS.num_samples} samples, batch "
             f"{FLAGS.batch_size}, seed {FLAGS.seed}")  # fmt: skip
    table = _table(title, rows)
    base = FLAGS.output or os.path.join(config["logdir"], "tie_flips")
    benchmarking.write_table(base, table, {"title": title, "rows": rows})
    print(table)
    print(f"wrote {base}.md, .json")


if __name__ == "__main__":
    app.run(main)
