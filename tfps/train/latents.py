"""The frozen encoder's latents as the ARM's data, and decoding sampled latents [1, sec. 4.2].

Latents are int32 `[B, h, w, c]` with values in [0, K): the ARM models them as an "image" of shape
(h, w, c) with K categories in raster-then-channel order, exactly like image data, so every
sampler works on them unchanged (`TrainConfig.latents_from`). The latents of a split are computed
once per autoencoder checkpoint and cached in `<autoencoder run>/latents/`. Decoded images are
float32 `[B, H, W, C]` in [-1, 1].

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfps.data import builtin as tfps_data
from tfps.data import sources
from tfps.train import autoencoder_training, rundir
from tfps.train import config as config_lib

LATENTS_DIR = "latents"


# ----------------------------------------------------------------------------- latents for the ARM


def latent_dtype(num_categories):
    """The smallest numpy integer type for latents in [0, K): uint8 up to K = 256, else int32."""
    return np.uint8 if num_categories <= 256 else np.int32


def encode_images(model, images, batch_size=256, dtype=np.int32):
    """Q(x) of a dataset of single int images (or an `[N, H, W, C]` array): `[N, h, w, c]` of
    `dtype` (a smaller type than int32 keeps the latents of large datasets small in memory)."""
    if isinstance(images, np.ndarray):
        images = tf.data.Dataset.from_tensor_slices(images)
    encode = tf.function(
        lambda x: model.encode(tf.cast(x, tf.int32), training=False), reduce_retracing=True
    )
    parts = [
        encode(x).numpy().astype(dtype)
        for x in images.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)
    ]
    if not parts:
        return np.zeros((0,) + model.latent_shape, dtype)
    return np.concatenate(parts)


def cached_latents(model, ae_config, split, data_dir=None):
    """The frozen encoder's latents of `split` of the autoencoder's dataset: `[N, h, w, c]` of
    `latent_dtype(K)` (uint8 for K <= 256: 322 MB for ImageNet32's train split).

    Computed once per checkpoint and cached as `<autoencoder run>/latents/<ckpt>-<split>.npy`
    (an unwritable run directory only costs the recomputation).
    """
    name = os.path.basename(ae_config["checkpoint"])
    path = os.path.join(ae_config["logdir"], LATENTS_DIR, f"{name}-{split}.npy")
    if os.path.isfile(path):
        return np.load(path)
    train = dict(ae_config["train"], data_dir=data_dir or ae_config["train"].get("data_dir"))
    images = sources.open_dataset(config_lib.AutoencoderConfig.from_dict(train)).load(split)
    latents = encode_images(model, images, dtype=latent_dtype(model.latent_categories))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npy"
        np.save(tmp, latents)
        os.replace(tmp, path)
    except OSError as e:
        logging.warning("could not cache latents in %s (%s); continuing without", path, e)
    return latents


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
    model, config, _, _ = autoencoder_training.built_autoencoder(logdir_or_checkpoint)
    return _latents_info(model, config)


def _latents_info(model, ae_config):
    return tfps_data.DatasetInfo(
        f"{ae_config['train']['dataset']}:latents",
        model.latent_shape,
        model.latent_categories,
        None,
    )


def latent_source(config):
    """The ARM's data when `config.latents_from` names an autoencoder run (`tfps.train.training`).

    Returns `(info, load, description)`: `info` a `DatasetInfo` of the latents (image_shape
    `(h, w, c)`, K = latent categories), `load(split)` a dataset of single integer latents
    `[h, w, c]` (uint8 for K <= 256; the ARM's pipelines cast to int32), and `description` the
    keys added to config.json's `dataset` section: the
    autoencoder's run directory and exact checkpoint (so that samples can be decoded), the image
    data it encodes, and `dimension_reduction` = (H * W * C) / (h * w * c).
    """
    model, ae_config = autoencoder_training.load_autoencoder(config.latents_from)
    info = _latents_info(model, ae_config)

    def load(split):
        return tf.data.Dataset.from_tensor_slices(
            cached_latents(model, ae_config, split, config.data_dir)
        )

    description = {
        "autoencoder": os.path.abspath(ae_config["logdir"]),
        "autoencoder_checkpoint": os.path.abspath(ae_config["checkpoint"]),
        "images": ae_config["dataset"],
        "dimension_reduction": math.prod(model.image_shape) / math.prod(model.latent_shape),
    }
    return info, load, description


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


# ----------------------------------------------------------------------------- decoding
