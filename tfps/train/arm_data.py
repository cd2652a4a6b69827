"""What an ARM models: the images of a dataset, or the latents of a frozen autoencoder.

`checked(config)` validates a `TrainConfig` against its data, before anything is written: with
`latents_from`, the dataset and bit depth become the autoencoder's and the model must fit the
latents [1, sec. 4.2]. `source(config)` gives the data itself: a built-in dataset or the user's
own (`tfps.data.sources`, read and checked there, so bad data fails before a run directory exists).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from tfps.data import sources
from tfps.train import latents


def checked(config):
    """The validated `config`, with the autoencoder's dataset and bits when it models latents
    (`tfps.train.latents.with_autoencoder_data`). Raises ValueError naming the problem."""
    return latents.with_autoencoder_data(config.validate())


def source(config):
    """`(info, load(split) -> dataset of single int images, extra dataset description)`: the
    images of `config.dataset`, or the latents of an autoencoder (`config.latents_from`)."""
    if config.latents_from:
        return latents.latent_source(config)
    opened = sources.open_checked(config)  # DataError for bad data, or a model that misfits it
    return opened.info, opened.load, opened.description
