"""Anytime sampling: images from the first j codes of a prior over an ordered code, for several j.

    python -m launch.anytime --model=runs/anytime_prior --num_samples=8 --method=fpi

`--model` is an ARM trained on the codes of a channel-quantised autoencoder
(`--config.data.latents_from=<autoencoder run>` with `--config.model.quantization=channel`, ordered
or not). For each code length j of `--num_codes` (default: 1/8 ... 8/8 of the code,
`tfps.models.anytime.code_lengths`) it samples the first j codes with `--method` for the same
noise (exact: the first j codes of the ancestral sample; `tfps.models.anytime`) and decodes them
with the rest zero [1]. Writes to `--output_dir` (default `<model>/anytime`):

- `anytime.png`: one row per j (shortest first), one column per sample;
- `anytime.md` / `.json`: per j, the fraction of the code, ARM calls of the batch and seconds
  (after a warm-up call of the same length).

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

from tfps.evaluation import benchmarking, pictures
from tfps.models import anytime, ordered_code
from tfps.sampling import noise as noise_lib
from tfps.serving import decoder as decoder_lib
from tfps.train import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A run of a prior over a channel code.", required=True)
flags.DEFINE_list("num_codes", [], "Code lengths j (default: 1/8 ... 8/8 of the code).")
flags.DEFINE_integer("num_samples", 8, "Samples per code length (one batch).", lower_bound=1)
flags.DEFINE_string("method", "fpi", "Sampling method (every method: the same codes).")
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise.")
flags.DEFINE_string("output_dir", None, "Where to write (default: <model>/anytime).")


def _load():
    """`(prior, autoencoder, config, lengths)`; ValueError unless the run is a prior over a
    channel code."""
    prior, config = training.load_trained(FLAGS.model)
    autoencoder = decoder_lib.load_decoder(config).autoencoder
    if getattr(autoencoder, "quantization", None) != ordered_code.CHANNEL:
        raise ValueError(
            f"{FLAGS.model}: anytime sampling needs a prior over a channel code "
            f"(quantization={ordered_code.CHANNEL!r}); its autoencoder quantises latent pixels"
        )
    n = autoencoder.latent_channels
    if not all(v.isdigit() for v in FLAGS.num_codes):
        raise ValueError(f"--num_codes must be code lengths, got {','.join(FLAGS.num_codes)}")
    lengths = [int(v) for v in FLAGS.num_codes] or anytime.code_lengths(n)
    for j in lengths:
        ordered_code.check_num_codes(j, n)
    return prior, autoencoder, config, sorted(set(lengths))


def _rows(prior, autoencoder, lengths, noise):
    rows, images = [], []
    n = autoencoder.latent_channels
    for j in lengths:
        sampler = anytime.prefix_sampler(prior, j)
        sampler.check_method(FLAGS.method)
        anytime.anytime_sample(prior, noise, j, FLAGS.method, sampler=sampler)  # traces
        start = time.perf_counter()
        got = anytime.anytime_sample(prior, noise, j, FLAGS.method, autoencoder, sampler)
        decoded = np.clip(got.images.numpy(), -1.0, 1.0)
        seconds = time.perf_counter() - start
        rows.append(dict(num_codes=j, fraction=j / n, arm_calls=int(got.result.arm_calls),
                         seconds=seconds))  # fmt: skip
        images.append(np.asarray(autoencoder.to_levels(decoded)))
    return rows, images


def _table(title, rows):
    lines = [
        f"**{title}**",
        "",
        "| codes j | of the code | ARM calls | seconds |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['num_codes']} | {r['fraction']:.0%} | {r['arm_calls']} | "
                     f"{r['seconds']:.3f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        prior, autoencoder, config, lengths = _load()
        shape = (FLAGS.num_samples,) + tuple(prior.event_shape) + (prior.num_categories,)
        noise = noise_lib.gumbel_noise(shape, FLAGS.seed)
        rows, images = _rows(prior, autoencoder, lengths, noise)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    run = os.path.basename(os.path.normpath(config["logdir"]))
    title = f"{run}: method {FLAGS.method}, {FLAGS.num_samples} samples, seed {FLAGS.seed}"
    table = _table(title, rows)
    output_dir = FLAGS.output_dir or os.path.join(config["logdir"], "anytime")
    os.makedirs(output_dir, exist_ok=True)
    base = os.path.join(output_dir, "anytime")
    benchmarking.write_table(base, table, {"title": title, "rows": rows})
    levels = autoencoder.num_levels
    picture = pictures.to_picture(np.concatenate(images), levels)
    scale = pictures.auto_scale(picture.shape[1], target=48)
    pictures.write_png(
        base + ".png", pictures.grid(picture, columns=FLAGS.num_samples, scale=scale)
    )
    print(table)
    print(f"wrote {base}.md, .json, .png")


if __name__ == "__main__":
    app.run(main)
