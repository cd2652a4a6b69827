"""Demo: a PixelCNN on the frozen latents of `configs/latent_autoencoder.py`'s run:

    python -m launch.train --config=configs/latent_arm.py --config.data.latents_from=runs/ae

The dataset and bit depth are the autoencoder's (docs/latent_results.md).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.num_resnets = 2
    config.model.filters = 64
    config.training.steps = 2000
    config.optimizer.learning_rate = 1e-3
    config.training.eval_every = 250
    config.training.checkpoint_every = 500
    config.training.log_every = 100
    config.training.eval_batches = 10
    return config
