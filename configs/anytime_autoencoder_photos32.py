"""Anytime sampling's ordered code [1] on the colour set `photos32` (32x32x3 patches of
scikit-image's photographs): 32 codes, each one 8 x 8 channel map from a codebook of 256 maps;
`configs/anytime_autoencoder_digits32.py`'s schedule (`docs/anytime.md`).

    python -m launch.train_autoencoder --config=configs/anytime_autoencoder_photos32.py \
        --logdir=runs/anytime_ae_photos32

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

from configs import anytime_autoencoder_digits32


def get_config():
    config = anytime_autoencoder_digits32.get_config()
    config.data.dataset = "photos32"
    config.model.latent_channels = 32
    config.model.latent_categories = 256
    return config
