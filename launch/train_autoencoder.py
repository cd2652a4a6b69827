"""Train the discrete-latent autoencoder (seed 000, section 4.2, Appendix A.3); every
AutoencoderConfig field is a flag.

The embedded configuration (offline, ~2.5 minutes on 2 CPU cores):

    python -m launch.train_autoencoder --logdir=runs/digits32_ae --dataset=digits32 --width=64 \
        --latent_channels=4 --latent_categories=32 --steps=600 --learning_rate=1e-3

The paper's (needs the tfds download; width 512, 4 x 8 x 8 latent, 128 categories, 50000 steps):

    python -m launch.train_autoencoder --logdir=runs/cifar10_ae --dataset=cifar10

Then train the ARM on the frozen encoder's latents:
`python -m launch.train --logdir=runs/cifar10_arm --latents_from=runs/cifar10_ae`.
Rerunning with the same --logdir resumes; prints the test reconstruction MSE (on [-1, 1]).
"""
import os
import sys

if __package__ in (None, ""):  # `python launch/train_autoencoder.py`: make the root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging

from launch import config_flags
from tfps import latent
from tfps import training

FLAGS = flags.FLAGS
flags.DEFINE_string("logdir", None, "Run directory: config.json, checkpoints/, TensorBoard "
                                    "events, metrics.json, latents/. Reused to resume.",
                    required=True)
_CONFIG_FIELDS = config_flags.define_config_flags(latent.AutoencoderConfig, latent.check_field)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = latent.AutoencoderConfig(**{name: FLAGS[name].value for name in _CONFIG_FIELDS})
    try:
        config.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    metrics = latent.train_autoencoder(config, FLAGS.logdir)
    rate = metrics["steps_per_sec"]
    print(f"{metrics['dataset']}: step {metrics['step']}  test mse {metrics['test_mse']:.5f}  "
          f"(validation {metrics['validation_mse']:.5f}; latent {metrics['latent_shape']}, "
          f"{100 * metrics['test_categories_used']:.0f}% of the (channel, category) pairs used"
          + (f", {rate:.1f} steps/s" if rate else "") + ")", flush=True)
    logging.info("Metrics written to %s", os.path.join(FLAGS.logdir, training.METRICS_FILE))


if __name__ == "__main__":
    app.run(main)
