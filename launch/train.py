"""Train a PixelCNN ARM (seed 000, section 4.1, Table 4); every TrainConfig field is a flag.

    python -m launch.train --logdir=runs/digits --num_resnets=2 --filters=32 --steps=1500
    python -m launch.train --logdir=runs/binary --dataset=digits28_binary --forecast_steps=20
    python -m launch.train --helpfull

ARM on the latents of a discrete autoencoder (seed 000, section 4.2; tfps.latent):

    python -m launch.train --logdir=runs/digits32_arm --latents_from=runs/digits32_ae

takes the autoencoder's --dataset and --bits unless they are given.

Rerunning with the same --logdir resumes from the latest checkpoint; a finished run is only
evaluated. Prints the final test bits per dimension and writes logdir/metrics.json.
"""
import os
import sys

if __package__ in (None, ""):  # `python launch/train.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging

from launch import config_flags
from tfps import training

FLAGS = flags.FLAGS
flags.DEFINE_string("logdir", None, "Run directory: config.json, checkpoints/, TensorBoard "
                                    "events, metrics.json. Reused to resume.", required=True)

# The bit depth must suit the dataset, the forecast window fit in its d, the scales its size.
_CONFIG_FIELDS = config_flags.define_config_flags(
    training.TrainConfig, training.check_field,
    check_together=("dataset", "bits", "forecast_steps", "num_scales"),
    check_values=lambda values: training.TrainConfig(**values).validate())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    values = {name: FLAGS[name].value for name in _CONFIG_FIELDS}
    if FLAGS.latents_from:  # the latents are of the autoencoder's data: take its dataset, bits
        from tfps import latent
        try:
            defaults = latent.autoencoder_data(FLAGS.latents_from)
        except (ValueError, FileNotFoundError) as e:
            raise app.UsageError(f"--latents_from: {e}") from e
        values.update({k: v for k, v in defaults.items() if not FLAGS[k].present})
        conflicts = [f"--{k}={values[k]!r}" for k, v in defaults.items() if values[k] != v]
        if conflicts:
            raise app.UsageError(f"--latents_from={FLAGS.latents_from} encodes dataset="
                                 f"{defaults['dataset']!r} bits={defaults['bits']!r}; "
                                 f"{', '.join(conflicts)} disagrees (leave it out)")
    config = training.TrainConfig(**values)
    if FLAGS.latents_from:  # the flag validators saw the images; the ARM models the latents
        try:
            config.check_fits(latent.latent_info(FLAGS.latents_from))
        except ValueError as e:
            raise app.UsageError(str(e)) from e
    metrics = training.train(config, FLAGS.logdir)
    rate = metrics["steps_per_sec"]
    print(f"{metrics['dataset']}: step {metrics['step']}  test bpd {metrics['test_bpd']:.4f}  "
          f"(validation {metrics['validation_bpd']:.4f}, uniform {metrics['uniform_bpd']:.4f}"
          + (f", {rate:.1f} steps/s" if rate else "") + ")"
          + (f"  = {metrics['test_bits_per_image_dim']:.4f} bits per image dimension"
             if "test_bits_per_image_dim" in metrics else ""), flush=True)
    logging.info("Metrics written to %s", os.path.join(FLAGS.logdir, training.METRICS_FILE))


if __name__ == "__main__":
    app.run(main)
