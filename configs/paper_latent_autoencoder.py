"""The paper's discrete autoencoder [1, sec. 4.2, Appendix A.3]: width 512, a 4 x 8 x 8 latent of
128 categories, MSE, 50000 steps, optimisation as [1, Table 4]; on CIFAR10 (also SVHN and
ImageNet32: `--config.data.dataset=svhn_cropped`). Needs the tfds download.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import default_autoencoder


def get_config():
    config = default_autoencoder.get_config()
    config.data.dataset = "cifar10"
    config.model.width = 512
    config.model.latent_channels = 4
    config.model.latent_categories = 128
    config.training.steps = 50000
    return config
