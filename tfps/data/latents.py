"""The frozen encoder's latents as data: what an ARM with `latents_from` models [1, sec. 4.2].

Latents are integers `[h, w, c]` with values in [0, K): the ARM models them as an "image" of shape
(h, w, c) with K categories in raster-then-channel order, exactly like image data, so every
sampler works on them unchanged. `tfps.data.open(config, encoder=...)` opens them
(`open_latents`); the `Encoder` comes from the train room (`tfps.train.latents.load_encoder`
restores the autoencoder): this room reads no checkpoint. The latents of a split are computed once
per autoencoder checkpoint and cached as `<autoencoder run>/latents/<checkpoint>-<split>.npy`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import dataclasses
import math
import os
import weakref

import numpy as np
import tensorflow as tf
from absl import logging

from tfps.data import checks, sources

LATENTS_DIR = "latents"


@dataclasses.dataclass(frozen=True)
class Encoder:
    """A trained autoencoder's frozen encoder, as `tfps.data.open` takes it for `latents_from`.

    `model`: the autoencoder, with `encode(images, training=False)` -> int latents `[B, h, w, c]`,
    `latent_shape` (h, w, c), `latent_categories` K and `image_shape` (H, W, C); restored by the
    caller. `run`: its recorded run config (config.json with `logdir` and `checkpoint`, the
    restored prefix, as `tfps.train.autoencoder_training.load_autoencoder` gives it): where the
    latents are cached and what an ARM's config.json records of them. `images`: the config of the
    images it encodes (its `AutoencoderConfig`: dataset, bits, data_dir, ...), read through
    `tfps.data.sources.open_examples` when a split's latents are not cached yet.
    """

    model: object
    run: dict
    images: object

    def encode(self, images, training=False):
        return self.model.encode(images, training=training)

    @property
    def latent_shape(self):
        return tuple(self.model.latent_shape)

    @property
    def latent_categories(self):
        return self.model.latent_categories

    @property
    def image_shape(self):
        return tuple(self.model.image_shape)


def latent_dtype(num_categories):
    """The smallest numpy integer type for latents in [0, K): uint8 up to K = 256, else int32."""
    return np.uint8 if num_categories <= 256 else np.int32


_ENCODERS = weakref.WeakKeyDictionary()  # autoencoder -> its encoding tf.function


def encode_images(encoder, images, batch_size=256, dtype=np.int32):
    """Q(x) of a dataset of single int images (or an `[N, H, W, C]` array): `[N, h, w, c]` of
    `dtype` (a smaller type than int32 keeps the latents of large datasets small in memory)."""
    if isinstance(images, np.ndarray):
        images = tf.data.Dataset.from_tensor_slices(images)
    model = getattr(encoder, "model", encoder)  # an `Encoder` or the autoencoder itself
    encode = _ENCODERS.get(model)
    if encode is None:  # one traced function per autoencoder, whatever the split or dataset
        ref = weakref.ref(model)  # the function must not keep its key alive
        encode = _ENCODERS[model] = tf.function(
            lambda x: ref().encode(tf.cast(x, tf.int32), training=False), reduce_retracing=True
        )
    parts = [
        encode(x).numpy().astype(dtype)
        for x in images.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)
    ]
    if not parts:
        return np.zeros((0,) + tuple(encoder.latent_shape), dtype)
    return np.concatenate(parts)


def cached_latents(encoder, split, data_dir=None):
    """The frozen encoder's latents of `split` of the autoencoder's images (read from `data_dir`,
    else from the autoencoder's): `[N, h, w, c]` of `latent_dtype(K)` (uint8 for K <= 256: 322 MB
    for ImageNet32's train split).

    Computed once per checkpoint and cached as `<autoencoder run>/latents/<ckpt>-<split>.npy`
    (an unwritable run directory only costs the recomputation).
    """
    name = os.path.basename(encoder.run["checkpoint"])
    path = os.path.join(encoder.run["logdir"], LATENTS_DIR, f"{name}-{split}.npy")
    if os.path.isfile(path):
        return np.load(path)
    images = dataclasses.replace(encoder.images, data_dir=data_dir or encoder.images.data_dir)
    examples = sources.open_examples(images).load(split)
    latents = encode_images(encoder, examples, dtype=latent_dtype(encoder.latent_categories))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npy"
        np.save(tmp, latents)
        os.replace(tmp, path)
    except OSError as e:
        logging.warning("could not cache latents in %s (%s); continuing without", path, e)
    return latents


def latent_info(encoder):
    """The `DatasetInfo` of an encoder's latents: what an ARM on them models (shape `(h, w, c)`,
    K = latent categories), named `<images>:latents`. Reads no data."""
    return checks.DatasetInfo(
        f"{encoder.images.dataset}:latents",
        encoder.latent_shape,
        encoder.latent_categories,
        None,
    )


def open_latents(encoder, data_dir=None):
    """The latents of `encoder` (an `Encoder`) as an `Opened`: `info` their `latent_info`,
    `load(split)` a dataset of single integer latents `[h, w, c]` (uint8 for K <= 256; the ARM's
    pipelines cast to int32), encoded and cached on first use (`cached_latents`), and
    `description` the keys added to config.json's `dataset` section: the autoencoder's run
    directory and exact checkpoint (so that samples can be decoded), the image data it encodes,
    and `dimension_reduction` = (H * W * C) / (h * w * c).
    """

    def load(split):
        return tf.data.Dataset.from_tensor_slices(cached_latents(encoder, split, data_dir))

    description = {
        "autoencoder": os.path.abspath(encoder.run["logdir"]),
        "autoencoder_checkpoint": os.path.abspath(encoder.run["checkpoint"]),
        "images": encoder.run["dataset"],
        "dimension_reduction": math.prod(encoder.image_shape) / math.prod(encoder.latent_shape),
    }
    return checks.Opened(latent_info(encoder), load, description)
