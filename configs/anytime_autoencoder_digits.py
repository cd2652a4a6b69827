"""The demo's ordered code [1] (`make demo`, seconds on 2 CPU cores): the embedded 8x8 `digits`,
8 codes, each one 2 x 2 channel map from a codebook of 16 maps, width 16, 600 steps. The
measured presets are `configs/anytime_autoencoder_digits32.py` and `_photos32.py`
(`docs/anytime.md`).

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

from configs import anytime_autoencoder_digits32


def get_config():
    config = anytime_autoencoder_digits32.get_config()
    config.data.dataset = "digits"
    config.model.width = 16
    config.model.latent_channels = 8
    config.model.latent_categories = 16
    config.optimizer.learning_rate = 3e-3
    config.training.batch_size = 32
    config.training.steps = 600
    config.training.eval_every = 300
    config.training.checkpoint_every = 300
    config.training.eval_batches = 5
    return config
