"""Sample from a trained ARM with any method; every method gives the same samples for a seed.

    python -m launch.sample --model=runs/digits --method=fpi --num_samples=16 --seed=0

Writes `<output_dir>/samples_<method>.npy` (int32 [N, H, W, C]) and a PNG grid, and prints the
ARM calls as a percentage of d = H * W * C (seed 000, Table 1).
"""
import os
import sys
import time

if __package__ in (None, ""):  # `python launch/sample.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

import numpy as np

from tfps import export
from tfps import noise as noise_lib
from tfps import sampling
from tfps import summaries
from tfps import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run directory (its latest checkpoint), a "
                                   "checkpoint prefix, or an exported SavedModel: "
                                   "exported/<name>/<version>, or exported/<name> for its latest "
                                   "version.", required=True)
flags.DEFINE_string("method", "fpi", "Sampling method: ancestral, zeros, last, fpi, fpi_argmax, "
                                     "learned / learned_unshared (runs trained with "
                                     "--forecast_steps), or any other method the model offers.")
flags.DEFINE_integer("num_samples", 16, "How many samples to draw.", lower_bound=1)
flags.DEFINE_integer("batch_size", 16, "Slots: samples per ARM call. Finished slots are refilled "
                                        "with pending samples (scheduling).", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise: sample k uses noise row k of "
                                "gumbel_noise([num_samples, ...], seed).")
flags.DEFINE_string("output_dir", None, "Where to write samples (default: <model>/samples; "
                                        "runs/samples/<name>_v<version> for a SavedModel).")
flags.DEFINE_bool("jit_compile", False, "Compile the sampling loop with XLA.")


def load_sampler(path, jit_compile=False):
    """(sampler, description) for a run directory, checkpoint prefix or exported SavedModel."""
    if export.is_export(path):  # The export's own loops run; jit_compile was fixed at export.
        exported = export.load_exported(path)
        return exported, exported.metadata
    model, config = training.load_trained(path)
    return sampling.sampler_for_model(model, jit_compile=jit_compile,
                                      heads=config.get("forecast_heads")), config


def draw(sampler, method, num_samples, batch_size, seed):
    """A `SampleResult` for all samples; sample k uses noise row k for `seed`.

    Samples run in `batch_size` slots with scheduling (issue 8): a finished slot takes the next
    pending sample, so the batch does not wait for its slowest member.
    """
    return sampler.sample_scheduled_from_seed(seed, num_samples, slots=batch_size, method=method)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        sampler, _ = load_sampler(FLAGS.model, FLAGS.jit_compile)
        sampler.check_method(FLAGS.method)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    output_dir = (FLAGS.output_dir or export.default_samples_dir(FLAGS.model)
                  or os.path.join(FLAGS.model.rstrip("/"), "samples"))
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    result = draw(sampler, FLAGS.method, FLAGS.num_samples, FLAGS.batch_size, FLAGS.seed)
    samples = result.samples.numpy()
    seconds = time.perf_counter() - start
    d = sampler.num_variables
    npy_path = os.path.join(output_dir, f"samples_{FLAGS.method}.npy")
    png_path = os.path.join(output_dir, f"samples_{FLAGS.method}.png")
    np.save(npy_path, samples)
    rgb = summaries.to_rgb(samples, sampler.num_categories)
    summaries.write_png(png_path, summaries.grid(rgb, scale=summaries.auto_scale(rgb.shape[1])))
    slots = min(FLAGS.batch_size, FLAGS.num_samples)
    per_sample = 100.0 * float(np.mean(result.arm_calls_per_example)) / d
    print(f"method {FLAGS.method}: {FLAGS.num_samples} samples in {slots} slots: "
          f"{int(result.arm_calls)} ARM calls in all; each sample needed {per_sample:.1f}% of "
          f"d={d} calls on average; {seconds:.2f}s (includes tracing)")
    print(f"wrote {npy_path} and {png_path}")


if __name__ == "__main__":
    app.run(main)
