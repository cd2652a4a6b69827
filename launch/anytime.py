"""Anytime sampling: images from the first j codes of a prior over an ordered code, for several j.

    python -m launch.anytime --model=runs/anytime_prior --num_samples=8 \
        --method=ancestral,ancestral_cached,fpi

`--model` is an ARM trained on the codes of a channel-quantised autoencoder
(`--config.data.latents_from=<autoencoder run>` with `--config.model.quantization=channel`, ordered
or not). For each code length j of `--num_codes` (default: 1/8 ... 8/8 of the code,
`tfps.models.ordered_code.code_lengths`) it samples the first j codes with every method of
`--method` for the same noise (exact: the first j codes of the ancestral sample,
`tfps.sampling.prefix`; `ancestral_cached`, a Transformer's key/value cache, runs the whole code's
sampler stopped after j calls) and decodes them with the rest zero [1]. Writes to `--output_dir`
(default `<model>/anytime`):

- `anytime.png`: one row per j (shortest first), one column per sample (at most 16);
- `anytime.md` / `.json`: per j, the fraction of the code, per method the ARM calls of the batch
  and seconds (after a warm-up call; the best of `--best_of`), whether every method sampled the
  same codes, and for runs on the embedded digits the Frechet distance of the decoded samples to
  the test digits in a digit classifier's features (`tfps.evaluation.frechet.scorer`;
  `--classifier_steps=0` leaves it out).

Methods that sample different codes for the same noise break exactness: the launcher writes the
table and exits with a non-zero status naming the code lengths.

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

import os
import sys
import time

if __package__ in (None, ""):  # `python launch/anytime.py`: the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from tfps.data import builtin, sources
from tfps.evaluation import benchmarking, frechet, pictures
from tfps.models import ordered_code
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive
from tfps.sampling import prefix as prefix_lib
from tfps.serving import loading

FLAGS = flags.FLAGS
SHOWN = 16  # samples per row of the picture
flags.DEFINE_string("model", None, "A run of a prior over a channel code.", required=True)
flags.DEFINE_list(
    "num_codes", [], "Code lengths j, or fractions of the code (default: 1/8 ... 8/8 of the code)."
)
flags.DEFINE_integer("num_samples", 8, "Samples per code length (one batch).", lower_bound=1)
flags.DEFINE_list(
    "method", ["fpi"], "Sampling methods, one column each (every method: the same codes)."
)
flags.DEFINE_integer(
    "best_of", 1, "Seconds: the best of this many timed calls (1: one call).", lower_bound=1
)
flags.DEFINE_integer(
    "classifier_steps",
    600,
    "Training steps of the digit classifier of the Frechet distance column (runs on the embedded "
    "digits only); 0: no such column.",
    lower_bound=0,
)
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise.")
flags.DEFINE_string("output_dir", None, "Where to write (default: <model>/anytime).")


def _load():
    """`(prior, autoencoder, config, lengths, whole)`, `whole` the sampler of the whole code;
    ValueError unless the run is a prior over a channel code, every --num_codes names a code
    length and every --method is a method of the prefix samplers (or `ancestral_cached` of the
    whole code's)."""
    prior, decoder, config = loading.load_code_prior(FLAGS.model)
    n = decoder.latent_shape[0]
    lengths = [ordered_code.num_codes_of(v, n) for v in FLAGS.num_codes]
    lengths = lengths or ordered_code.code_lengths(n)
    whole = predictive.sampler_for_model(prior)
    prefix = prefix_lib.prefix_sampler(prior, n)
    for method in FLAGS.method:
        if not (method == predictive.ANCESTRAL_CACHED and method in whole.all_methods):
            prefix.check_method(method)
    return prior, decoder.autoencoder, config, sorted(set(lengths)), whole


def _timed(run):
    """`(Anytime, seconds)` of `run() -> Anytime`: the best of `--best_of` timed calls after a
    warm-up call (which traces the sampler and the decoder both)."""
    run()
    best = float("inf")
    for _ in range(FLAGS.best_of):
        start = time.perf_counter()
        got = run()
        got.images.numpy()
        best = min(best, time.perf_counter() - start)
    return got, best


def _sampling(prior, autoencoder, j, method, noise, samplers):
    """`run() -> Anytime` of the first j codes with `method`, decoded: the prefix view's sampler,
    or for `ancestral_cached` (a Transformer's key/value cache, which the prefix view does not
    have) the whole code's sampler stopped after j calls, one code each."""
    whole, prefix = samplers
    if method == predictive.ANCESTRAL_CACHED and method in whole.all_methods:
        return lambda: prefix_lib.sample_within_budget(
            prior, noise, autoencoder, max_calls=j, method=method, sampler=whole
        )
    return lambda: prefix_lib.anytime_sample(prior, noise, j, method, autoencoder, prefix)


def _rows(prior, autoencoder, lengths, noise, score, whole):
    """Per code length: ARM calls and seconds of every method (the same codes), the Frechet
    distance of the decoded samples (`score`, or None) and the samples' levels."""
    rows, images = [], []
    n = autoencoder.latent_channels
    for j in lengths:
        samplers = (whole, prefix_lib.prefix_sampler(prior, j))
        row = dict(num_codes=j, fraction=j / n, methods={})
        codes = {}
        for method in FLAGS.method:
            got, seconds = _timed(_sampling(prior, autoencoder, j, method, noise, samplers))
            row["methods"][method] = dict(arm_calls=int(got.result.arm_calls), seconds=seconds)
            codes[method] = np.asarray(got.codes)
        first = codes[FLAGS.method[0]]
        row["same_codes"] = all(np.array_equal(c, first) for c in codes.values())
        levels = np.asarray(autoencoder.to_levels(np.clip(got.images.numpy(), -1.0, 1.0)))
        row["frechet"] = None if score is None else score(levels)
        rows.append(row)
        images.append(levels[:SHOWN])
    return rows, images


def _table(title, header, rows):
    methods = list(rows[0]["methods"])
    same = "yes" if all(r["same_codes"] for r in rows) else "NO"
    lines = [f"**{title}**", "", f"Every method sampled the same codes: {same}.", ""]
    lines += [header, ""] if header else []
    lines += [
        "| codes j | of the code | "
        + " | ".join(f"{m}: ARM calls | {m}: seconds" for m in methods)
        + " | Frechet distance |",
        "|---|---|" + "---|---|" * len(methods) + "---|",
    ]
    for r in rows:
        cells = [f"{r['methods'][m]['arm_calls']} | {r['methods'][m]['seconds']:.3f}"
                 for m in methods]  # fmt: skip
        fd = "-" if r["frechet"] is None else f"{r['frechet']:.2f}"
        lines.append(f"| {r['num_codes']} | {r['fraction']:.0%} | {' | '.join(cells)} | {fd} |")
    return "\n".join(lines)


def _scorer(config, autoencoder):
    """The Frechet column's `(score, header)` (`tfps.evaluation.frechet.scorer`), or
    `(None, note)`."""
    if FLAGS.classifier_steps == 0:
        return None, ""
    dataset = config["train"]["dataset"]
    if dataset in builtin.DATASETS and (
        builtin.dataset_info(dataset).num_categories != autoencoder.num_levels
    ):
        return None, f"no Frechet distance: the autoencoder reduced {dataset}'s levels"
    labelled = sources.labelled(dataset, autoencoder.num_levels)
    return frechet.scorer(labelled, FLAGS.classifier_steps)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:  # only the flags and the run: an error of the computation keeps its traceback
        prior, autoencoder, config, lengths, whole = _load()
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    shape = (FLAGS.num_samples,) + tuple(prior.event_shape) + (prior.num_categories,)
    noise = noise_lib.gumbel_noise(shape, FLAGS.seed)
    score, header = _scorer(config, autoencoder)
    rows, images = _rows(prior, autoencoder, lengths, noise, score, whole)
    run = os.path.basename(os.path.normpath(config["logdir"]))
    title = f"{run}: {FLAGS.num_samples} samples (one batch), seed {FLAGS.seed}"
    table = _table(title, header, rows)
    output_dir = FLAGS.output_dir or os.path.join(config["logdir"], "anytime")
    base = os.path.join(output_dir, "anytime")
    benchmarking.write_table(base, table, {"title": title, "quality": header, "rows": rows})
    pictures.write_rows(base + ".png", images, autoencoder.num_levels)
    print(table)
    print(f"wrote {base}.md, .json, .png")
    differ = [r["num_codes"] for r in rows if not r["same_codes"]]
    if differ:
        sys.exit(
            f"exactness broken: the methods {', '.join(FLAGS.method)} sampled different codes for "
            f"the same noise at code lengths {differ}"
        )


if __name__ == "__main__":
    app.run(main)
