"""Demo: the discrete autoencoder on the embedded `digits32` (32x32, 8 bit), a 4 x 8 x 8 latent of
32 categories, ~2.5 min on 2 cores (docs/latent_results.md)."""

from configs import default_autoencoder


def get_config():
    config = default_autoencoder.get_config()
    config.data.dataset = "digits32"
    config.model.width = 64
    config.model.latent_channels = 4
    config.model.latent_categories = 32
    config.training.steps = 600
    config.optimizer.learning_rate = 1e-3
    config.training.eval_every = 200
    config.training.checkpoint_every = 200
    config.training.log_every = 50
    config.training.eval_batches = 10
    return config
