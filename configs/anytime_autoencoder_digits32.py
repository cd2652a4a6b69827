"""Anytime sampling's ordered code [1] on the embedded grey `digits32` (32x32, 8 bit): 16 codes,
each one 8 x 8 channel map from a codebook of 128 maps, ordered coarse to fine by the
random-prefix objective; Adam 2e-3, batch 128 as [1] (`docs/anytime.md`). The unordered control is
`--config.model.ordered=false`. Then a prior over its codes: `configs/anytime_prior.py`.

    python -m launch.train_autoencoder --config=configs/anytime_autoencoder_digits32.py \
        --logdir=runs/anytime_ae_digits32

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

from configs import default_autoencoder


def get_config():
    config = default_autoencoder.get_config()
    config.data.dataset = "digits32"
    config.model.quantization = "channel"
    config.model.ordered = True
    config.model.width = 64
    config.model.latent_channels = 16
    config.model.latent_categories = 128
    config.optimizer.learning_rate = 2e-3
    config.training.batch_size = 128
    config.training.steps = 1500
    config.training.eval_every = 500
    config.training.checkpoint_every = 500
    config.training.log_every = 100
    config.training.eval_batches = 10
    return config
