"""An autoencoder run as the ARM's data source [1, sec. 4.2]: restoring its frozen encoder for
`tfps.data.open` (`load_encoder`, `encoder_for`) and taking its data fields
(`with_autoencoder_data`).

The latents themselves (encoding, the cache in `<autoencoder run>/latents/`, their `DatasetInfo`
and config.json description) are the data room's (`tfps.data.latents`); decoding sampled latents
is `tfps.serving.decoder`'s.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import dataclasses

from tfps.data import latents as data_latents
from tfps.train import autoencoder_training, rundir
from tfps.train import config as config_lib


def _encoder(model, run):
    images = config_lib.AutoencoderConfig.from_dict(run["train"])
    return data_latents.Encoder(model, run, images)


def load_encoder(logdir_or_checkpoint):
    """The frozen encoder of an autoencoder run (directory or checkpoint prefix), restored: a
    `tfps.data.latents.Encoder` for `tfps.data.open(config, encoder=...)`. Raises like
    `autoencoder_training.load_autoencoder`."""
    return _encoder(*autoencoder_training.load_autoencoder(logdir_or_checkpoint))


def encoder_for(config):
    """`load_encoder(config.latents_from)`, None when `config` (a `TrainConfig`) models images."""
    return load_encoder(config.latents_from) if config.latents_from else None


# The fields that say which images an autoencoder run encodes (the ARM on its latents takes them).
DATA_FIELDS = ("dataset", "bits", "num_categories", "binarize", "image_key", "validation_size")


def autoencoder_data(logdir_or_checkpoint):
    """`{field: value}` of the `DATA_FIELDS` of an autoencoder run (read from its config.json, no
    model built; runs from before a field existed have its default)."""
    logdir, _ = rundir.resolve_checkpoint(logdir_or_checkpoint)
    train = config_lib.AutoencoderConfig.from_dict(rundir.read_config(logdir)["train"])
    return {name: getattr(train, name) for name in DATA_FIELDS}


def with_autoencoder_data(config):
    """`config` (a `TrainConfig`) with the data fields (`DATA_FIELDS`: dataset, bit depth, ...) of
    the autoencoder run named by `config.latents_from`: the ARM models the latents of that data,
    a built-in dataset or the user's own. Unchanged without `latents_from`.

    Raises ValueError when `config` asks for other data (a value that is neither the default nor
    the autoencoder's), or when the model does not fit the latents
    (`TrainConfig.check_fits`), before anything is written.
    """
    if not config.latents_from:
        return config
    data = autoencoder_data(config.latents_from)
    default = type(config)()
    for key, value in data.items():
        if getattr(config, key) not in (getattr(default, key), value):
            raise ValueError(
                f"latents_from={config.latents_from} encodes dataset={data['dataset']!r} "
                f"bits={data['bits']!r}; {key}={getattr(config, key)!r} disagrees (leave it out)"
            )
    config = dataclasses.replace(config, **data).validate()
    return config.check_fits(latent_info(config.latents_from))


def latent_info(logdir_or_checkpoint):
    """The `DatasetInfo` of an autoencoder run's latents: what an ARM on them models (shape
    `(h, w, c)`, K = latent categories), from its config (no weights are read). Raises like
    `autoencoder_training.load_autoencoder`."""
    model, run, _, _ = autoencoder_training.built_autoencoder(logdir_or_checkpoint)
    return data_latents.latent_info(_encoder(model, run))


def latent_description(config):
    """The `dataset` section describing latents in a run config (an ARM run's config.json, the
    dict `tfps.train.training.load_trained` returns, or an export's metadata); None for image
    data."""
    if not isinstance(config, dict):
        return None
    for dataset in (config.get("dataset"), (config.get("training") or {}).get("dataset")):
        if isinstance(dataset, dict) and dataset.get("autoencoder_checkpoint"):
            return dataset
    return None


def is_latent(config):
    """True if `config` describes an ARM trained on autoencoder latents."""
    return latent_description(config) is not None
