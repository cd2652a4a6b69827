"""Train the discrete-latent autoencoder [1, sec. 4.2, Appendix A.3] from a config preset.

The embedded configuration (offline, ~2.5 minutes on 2 CPU cores):

    python -m launch.train_autoencoder --config=configs/latent_autoencoder.py \
        --logdir=runs/digits32_ae

The paper's (needs the tfds download; width 512, 4 x 8 x 8 latent, 128 categories, 50000 steps):

    python -m launch.train_autoencoder --config=configs/paper_latent_autoencoder.py \
        --logdir=runs/cifar10_ae

Then train the ARM on the frozen encoder's latents: `python -m launch.train
--config=configs/paper_latent_arm.py --config.data.latents_from=runs/cifar10_ae ...`.
Rerunning with the same --logdir resumes; prints the test reconstruction MSE (on [-1, 1]).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/train_autoencoder.py`: make the root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from launch import config_flags
from tfps.train import config as config_lib

FLAGS = flags.FLAGS
config_flags.define_run_flags(
    config_lib.AUTOENCODER,
    "configs/default_autoencoder.py",
    "config.json, checkpoints/, TensorBoard events, metrics.json, latents/",
)


def main(argv):
    config_flags.no_arguments(argv)
    config = config_flags.typed_config(config_lib.AUTOENCODER, FLAGS.logdir)
    from tfps.data import checks
    from tfps.distribute import strategies
    from tfps.train import autoencoder_training, run_lock

    try:
        metrics = autoencoder_training.train_autoencoder(config, FLAGS.logdir)
    # Raised before any writing: a strategy that cannot run here (no TPU, ...), or bad data.
    except (
        strategies.StrategyError,
        strategies.WorkerLostError,  # restarting every worker resumes
        checks.DataError,
        checks.DatasetUnavailableError,
        run_lock.RunDirectoryLockedError,
    ) as e:
        raise app.UsageError(str(e)) from e
    rate = metrics["steps_per_sec"]
    print(
        f"{metrics['dataset']}: step {metrics['step']}  test mse {metrics['test_mse']:.5f}  "
        f"(validation {metrics['validation_mse']:.5f}; latent {metrics['latent_shape']}, "
        f"{100 * metrics['test_categories_used']:.0f}% of the (channel, category) pairs used"
        + (f", {rate:.1f} steps/s" if rate else "")
        + ")",
        flush=True,
    )


if __name__ == "__main__":
    app.run(main, flags_parser=config_flags.parse_flags)
