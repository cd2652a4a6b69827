"""Sample from a trained ARM with any method; every method gives the same samples for a seed.

    python -m launch.sample --model=runs/digits --method=fpi --num_samples=16 --seed=0

`--method=ancestral,fpi,...` samples with several methods from one load, one after another.
Writes `<output_dir>/samples_<method>.npy` (int32 [N, H, W, C]) and, as PNG, the sample grid,
the forecasting-mistake map [1, Figures 3-4] and the convergence map next to the ancestral
baseline's [1, Figure 6], and prints the ARM calls as a percentage of d = H * W * C
[1, Table 1] (`launch.sample_run`).

With `--logdir` the same pictures, the scalars (ARM calls % of d, forecast accuracy, seconds per
sample) and a histogram of ARM calls per sample also go to TensorBoard, run
`<logdir>/sample_<method>` at the checkpoint's training step (`tfps.evaluation.summaries`). Pass the
training run directory to see them next to its `train` and `validation` runs:

    python -m launch.sample --model=runs/digits --method=fpi --logdir=runs/digits
    tensorboard --logdir=runs

For an ARM trained on the latents of an autoencoder (`launch/train.py
--config.data.latents_from`), the samples are latents and their decoded images are written next
to them: `images_<method>.npy` (float32 [N, H, W, C] in [-1, 1]) and `images_<method>.png`
[1, sec. 4.2].

For a prior over a channel code (an autoencoder trained with `--config.model.quantization=channel`,
`docs/anytime.md`), `--num_codes=j` (or a fraction of the code: `0.6`, `60%`) samples only the
first j codes with the method, exactly the first j codes of the whole code's samples for the seed,
and decodes them with the rest zero [2]: `samples_<method>_codes<j>.npy` (int32 [N, j]) and
`images_<method>_codes<j>.npy` / `.png`. `launch/anytime.py` draws several j side by side.

`--strategy=mirrored` spreads the samples over every GPU (or `--cpu_replicas` CPU devices) in
contiguous shares, each running `--batch_size` slots; the samples are the one-device ones and the
ARM calls printed are the sum over the replicas (`tfps.distribute.replicated.sample_replicated`).
The flags are those of `launch/benchmark.py` (`launch.strategy_flags`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.

[2]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/sample.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from launch import incremental_flags, sample_run, strategy_flags
from tfps.distribute import replicated
from tfps.serving import loading

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model",
    None,
    "A training run directory (its latest checkpoint), a "
    "checkpoint prefix, or an exported SavedModel: "
    "exported/<name>/<version>, or exported/<name> for its latest "
    "version.",
    required=True,
)
flags.DEFINE_list(
    "method",
    ["fpi"],
    "Sampling method: ancestral, zeros, last, fpi, fpi_argmax, "
    "learned / learned_unshared and their _argmax ablations "
    "(runs trained with --config.forecast.steps), or any other method "
    "the model offers; several, comma-separated, sample one after another from one load.",
)
flags.DEFINE_integer("num_samples", 16, "How many samples to draw.", lower_bound=1)
flags.DEFINE_integer(
    "batch_size",
    16,
    "Slots: samples per ARM call. Finished slots are refilled with pending samples (scheduling).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "seed",
    0,
    "Seed of the Gumbel noise: sample k uses noise row k of "
    "gumbel_noise([num_samples, ...], seed).",
)
flags.DEFINE_string(
    "output_dir",
    None,
    "Where to write samples (default: <model>/samples; "
    "runs/samples/<name>_v<version> for a SavedModel).",
)
flags.DEFINE_bool("jit_compile", False, "Compile the sampling loop with XLA.")
incremental_flags.define_flags(
    "Incremental ARM calls: each call recomputes only the rows its changed input reaches "
    "(same samples; a PixelCNN run directory, not an export)."
)
strategy_flags.define_flags("the samples")
flags.DEFINE_string(
    "num_codes",
    None,
    "A prior over a channel code only: sample its first j codes and decode them with the rest "
    "zero (anytime sampling); j, or a fraction of the code such as 0.6 or 60%. Default: the "
    "whole sample.",
)
flags.DEFINE_string(
    "logdir",
    None,
    "Also write TensorBoard summaries under "
    "<logdir>/sample_<method>, e.g. the training run directory "
    "(default: none; the PNG files are written either way).",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        strategy = strategy_flags.strategy()
        num_codes = None
        with strategy.scope():  # weights mirrored over the replicas
            if FLAGS.num_codes is None:
                loaded = loading.load(
                    FLAGS.model,
                    FLAGS.jit_compile,
                    export_decoder=True,
                    incremental=incremental_flags.incremental(),
                )
            elif incremental_flags.incremental():
                raise ValueError(
                    "--num_codes samples a prefix of a sequence prior; --incremental is for a "
                    "PixelCNN"
                )
            else:
                loaded, num_codes = loading.load_prefix(
                    FLAGS.model, FLAGS.num_codes, FLAGS.jit_compile
                )
        if not FLAGS.method:
            raise ValueError("--method names no method")
        for method in FLAGS.method:
            loaded.sampler.check_method(method)
        replicated.check_replicable(loaded.sampler, strategy)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    for method in FLAGS.method:
        sample_run.sample_to_files(
            loaded,
            method,
            FLAGS.num_samples,
            FLAGS.batch_size,
            FLAGS.seed,
            FLAGS.output_dir or sample_run.default_output_dir(FLAGS.model),
            logdir=FLAGS.logdir,
            strategy=strategy,
            num_codes=num_codes,
        )


if __name__ == "__main__":
    app.run(main)
