"""The one entry to data, `tfps.data.open(config, encoder=None)`: every source a run can name.

    opened = tfps.data.open(config)                      # built-in, tfds:NAME, .npz, a folder
    opened = tfps.data.open(config, encoder=encoder)     # config.latents_from: the latents
    opened.info, opened.load("train"), opened.description

Images and sequences come from `tfps.data.sources` (the built-in sets of `tfps.data.builtin`, tfds
through `tfps.data.tfds_source`, `.npz` files and folders); an autoencoder's latents from
`tfps.data.latents`, given the frozen `Encoder` that the caller restored
(`tfps.train.latents.load_encoder`: this room reads no checkpoint). All data is read and checked
when it is opened, then the config's model must fit it (`config.check_fits`), before anything is
written: bad data or a misfitting model is one `DataError`.
"""

from tfps.data import latents, sources
from tfps.data.checks import DataError


def open(config, encoder=None):  # shadows the builtin here only: `tfps.data.open`
    """The data of a run config (`tfps.train.config.RunConfig`), checked: a
    `tfps.data.checks.Opened` (`info`, `load(split)`, `description`: the entries config.json's
    `dataset` section adds).

    Args:
      config: a `TrainConfig` or `AutoencoderConfig`; its `dataset` names a built-in set or the
        user's own data (`tfps.data.sources`). With `latents_from` (a `TrainConfig` validated by
        `tfps.train.latents.with_autoencoder_data`) the data is the autoencoder's latents of it.
      encoder: a `tfps.data.latents.Encoder` (the restored autoencoder of `latents_from`, its
        recorded run config and the config of its images), given exactly when `latents_from` is.

    Raises:
      DataError: bad data (the file, split and first offending example), or a model that does not
        fit it (`config.check_fits`), before anything is written.
      DatasetUnavailableError: a tfds dataset that is neither prepared nor downloadable.
      ValueError: `encoder` missing for `latents_from`, or given without it.
    """
    latents_from = getattr(config, "latents_from", None)
    if latents_from and encoder is None:
        raise ValueError(
            f"latents_from={latents_from!r}: the data is an autoencoder's latents; pass its frozen "
            f"encoder: tfps.data.open(config, encoder=tfps.train.latents.load_encoder("
            f"config.latents_from))"
        )
    if encoder is not None and not latents_from:
        raise ValueError(
            "an encoder is for the latents of an autoencoder run: set config.latents_from to it"
        )
    if encoder is not None:
        opened = latents.open_latents(encoder, config.data_dir)
    else:
        opened = sources.open_examples(config)
    try:
        config.check_fits(opened.info)
    except ValueError as e:
        raise DataError(str(e)) from e
    return opened
