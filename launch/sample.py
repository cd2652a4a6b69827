"""Sample from a trained ARM with any method; every method gives the same samples for a seed.

    python -m launch.sample --model=runs/digits --method=fpi --num_samples=16 --seed=0

Writes `<output_dir>/samples_<method>.npy` (int32 [N, H, W, C]) and, as PNG, the sample grid, the
forecasting-mistake map (Figures 3-4) and the convergence map next to the ancestral baseline's
(Figure 6), and prints the ARM calls as a percentage of d = H * W * C (seed 000, Table 1).

With `--logdir` the same pictures, the scalars (ARM calls % of d, forecast accuracy, seconds per
sample) and a histogram of ARM calls per sample also go to TensorBoard, run `<logdir>/sample_<method>`
at the checkpoint's training step (`tfps.summaries`). Pass the training run directory to see them
next to its `train` and `validation` runs:

    python -m launch.sample --model=runs/digits --method=fpi --logdir=runs/digits
    tensorboard --logdir=runs

For an ARM trained on the latents of an autoencoder (`launch/train.py --latents_from`), the
samples are latents and their decoded images are written next to them: `images_<method>.npy`
(float32 [N, H, W, C] in [-1, 1]) and `images_<method>.png` (seed 000, section 4.2).
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
from tfps import latent
from tfps import sampling
from tfps import summaries
from tfps import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run directory (its latest checkpoint), a "
                                   "checkpoint prefix, or an exported SavedModel: "
                                   "exported/<name>/<version>, or exported/<name> for its latest "
                                   "version.", required=True)
flags.DEFINE_string("method", "fpi", "Sampling method: ancestral, zeros, last, fpi, fpi_argmax, "
                                     "learned / learned_unshared and their _argmax ablations "
                                     "(runs trained with --forecast_steps), or any other method "
                                     "the model offers.")
flags.DEFINE_integer("num_samples", 16, "How many samples to draw.", lower_bound=1)
flags.DEFINE_integer("batch_size", 16, "Slots: samples per ARM call. Finished slots are refilled "
                                        "with pending samples (scheduling).", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the Gumbel noise: sample k uses noise row k of "
                                "gumbel_noise([num_samples, ...], seed).")
flags.DEFINE_string("output_dir", None, "Where to write samples (default: <model>/samples; "
                                        "runs/samples/<name>_v<version> for a SavedModel).")
flags.DEFINE_bool("jit_compile", False, "Compile the sampling loop with XLA.")
flags.DEFINE_string("logdir", None, "Also write TensorBoard summaries under "
                                    "<logdir>/sample_<method>, e.g. the training run directory "
                                    "(default: none; the PNG files are written either way).")


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


def training_step(description):
    """The training step of the sampled checkpoint (run config or export metadata), else 0."""
    step = description.get("step")
    if step is None:
        step = (description.get("training") or {}).get("step")
    return int(step or 0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        sampler, description = load_sampler(FLAGS.model, FLAGS.jit_compile)
        sampler.check_method(FLAGS.method)
        decoder = latent.decoder_for(description)  # None unless the ARM models latents
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
    np.save(npy_path, samples)
    slots = min(FLAGS.batch_size, FLAGS.num_samples)
    # No evidence here, so the ancestral baseline of the convergence map is known without its d calls.
    inspection = summaries.inspect(
        result, FLAGS.method, sampler.num_categories,
        seconds_per_sample=seconds / FLAGS.num_samples,
        seconds_description=(f"Wall-clock seconds per sample of one launcher run ({FLAGS.num_samples} "
                             f"samples in {slots} slots), tf.function tracing included."),
        baseline=summaries.ancestral_determined_at(sampler.image_shape),
        max_samples=FLAGS.num_samples)
    pngs = summaries.write_pngs(os.path.join(output_dir, ""), FLAGS.method, inspection)
    per_sample = inspection.scalars[summaries.ARM_CALLS_PERCENT]
    accuracy = inspection.scalars.get(summaries.FORECAST_ACCURACY)
    print(f"method {FLAGS.method}: {FLAGS.num_samples} samples in {slots} slots: "
          f"{int(result.arm_calls)} ARM calls in all; each sample needed {per_sample:.1f}% of "
          f"d={d} calls on average; forecast accuracy "
          f"{'n/a' if accuracy is None else f'{100 * accuracy:.1f}%'}; {seconds:.2f}s "
          f"(includes tracing)")
    print(f"wrote {npy_path} and {', '.join(pngs)}")
    if FLAGS.logdir:
        run = summaries.run_dir(FLAGS.logdir, summaries.SAMPLE_RUN, FLAGS.method)
        step = training_step(description)
        summaries.write_tensorboard(run, step, inspection)
        print(f"wrote TensorBoard summaries to {run} (step {step})")
    if decoder is not None:
        _, images_npy, images_png = latent.write_decoded(decoder, samples, output_dir, FLAGS.method)
        print(f"decoded the latents: wrote {images_npy} and {images_png}")


if __name__ == "__main__":
    app.run(main)
