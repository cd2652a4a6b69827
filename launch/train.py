"""Train a PixelCNN ARM [1, sec. 4.1, Table 4] from a config preset.

    python -m launch.train --config=configs/digits.py --logdir=runs/digits
    python -m launch.train --config=configs/digits28_binary.py --logdir=runs/binary \
        --config.forecast.steps=20
    python -m launch.train --config=configs/paper_cifar10.py --helpfull   # every field

The ARM on the latents of a discrete autoencoder [1, sec. 4.2] (tfps.train.latents) takes the
autoencoder's dataset and bit depth:

    python -m launch.train --config=configs/latent_arm.py --logdir=runs/digits32_arm \
        --config.data.latents_from=runs/digits32_ae

Your own data (tfps.data.sources): `--config.data.dataset=` `tfds:NAME`, a path to an .npz file of
images or of sequences [N, L] (for a sequence arch, e.g. `configs/transformer_text.py`) or a
folder of PNG/JPEG images; bad data, or a model that does not fit it, is one error before
anything is written.

Rerunning with the same --logdir resumes from the latest checkpoint (without --config, the run's
recorded config is used: `--logdir=runs/x --config.training.steps=N`); a finished run is only
evaluated. Prints the final test bits per dimension and writes logdir/metrics.json.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/train.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from launch import config_flags
from tfps.train import config as config_lib

FLAGS = flags.FLAGS
config_flags.define_run_flags(
    config_lib.ARM,
    "configs/default.py",
    "config.json, checkpoints/, TensorBoard events, metrics.json",
)


def main(argv):
    config_flags.no_arguments(argv)
    config = config_flags.typed_config(config_lib.ARM, FLAGS.logdir)
    from tfps.data import checks
    from tfps.distribute import strategies
    from tfps.models import causality
    from tfps.train import run_lock, rundir, training

    try:
        config = training.checked(config)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    try:
        metrics = training.train(config, FLAGS.logdir)
    # Raised before any writing: a strategy that cannot run here (no TPU, ...), bad data, or a
    # new model that is not autoregressive.
    except (
        strategies.StrategyError,
        strategies.WorkerLostError,  # restarting every worker resumes
        checks.DataError,
        checks.DatasetUnavailableError,
        causality.NotAutoregressiveError,
        run_lock.RunDirectoryLockedError,
        rundir.CheckpointError,  # no checkpoint of the run restores
    ) as e:
        raise app.UsageError(str(e)) from e
    rate = metrics["steps_per_sec"]
    print(
        f"{metrics['dataset']}: step {metrics['step']}  test bpd {metrics['test_bpd']:.4f}  "
        f"(validation {metrics['validation_bpd']:.4f}, uniform {metrics['uniform_bpd']:.4f}"
        + (f", {rate:.1f} steps/s" if rate else "")
        + ")"
        + (
            f"  = {metrics['test_bits_per_image_dim']:.4f} bits per image dimension"
            if "test_bits_per_image_dim" in metrics
            else ""
        ),
        flush=True,
    )


if __name__ == "__main__":
    app.run(main, flags_parser=config_flags.parse_flags)
