"""Decoding the samples of an ARM on autoencoder latents: the decoder G of the frozen autoencoder
[1, sec. 4.2], and writing decoded images.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os

import numpy as np
import tensorflow as tf

from tfps.evaluation import pictures
from tfps.models import ordered_code, pixelcnn
from tfps.sampling import events
from tfps.train import autoencoder_training, rundir
from tfps.train.latents import is_latent, latent_description


class LatentDecoder:
    """G for the samples of a latent ARM: latents int32 `[B, h, w, c]` -> float32 `[B, H, W, C]`.

    Images are in [-1, 1] (the decoder's output clipped to the data range); `to_levels` maps them
    back to data values in [0, L). `function` is a `tf.function` with a fixed input signature over
    the decoder in inference mode (deterministic), for exports: calling it from a traced function
    captures the decoder's variables. For a channel code, `prefix_function(codes, num_codes [B])`
    decodes each example from its first num_codes codes (else it is None).
    """

    def __init__(self, autoencoder, config=None):
        self.autoencoder = autoencoder
        self.config = config or {}
        self.latent_shape = autoencoder.latent_shape
        self.latent_categories = autoencoder.latent_categories
        self.image_shape = autoencoder.image_shape
        self.num_levels = autoencoder.num_levels
        self.function = tf.function(
            self._decode,
            autograph=False,
            input_signature=[tf.TensorSpec((None,) + self.latent_shape, tf.int32)],
        )

        # A channel code (`tfps.models.ordered_code`) also decodes from the first j codes.
        self.prefix_function = None
        if isinstance(autoencoder, ordered_code.ChannelAutoencoder):
            self.prefix_function = tf.function(
                self._decode_prefix,
                autograph=False,
                input_signature=[
                    tf.TensorSpec((None,) + self.latent_shape, tf.int32),
                    tf.TensorSpec([None], tf.int32),
                ],
            )

    def _decode_prefix(self, codes, num_codes):
        images = self.autoencoder.decode(codes, num_codes=num_codes, training=False)
        return tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0)

    def _decode(self, latents):
        images = self.autoencoder.decode(latents, training=False)
        return tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0)

    def decode(self, latents):
        """Checked decode of int latents `[B, h, w, c]` in [0, K) -> float32 `[B, H, W, C]`."""
        latents = pixelcnn.validate_images(
            latents, self.latent_shape, self.latent_categories, "latents"
        )
        return self.function(latents)

    def to_levels(self, images):
        """float images in [-1, 1] -> int32 data values in [0, L)."""
        return self.autoencoder.to_levels(images)

    def prefix(self, num_codes):
        """The `PrefixDecoder` of the first `num_codes` codes (a channel code only)."""
        return PrefixDecoder(self, num_codes)


class PrefixDecoder:
    """G for the first j codes of a channel code (anytime sampling): `decode(codes [B, j(, C)])`
    pads the codes with zeros to the code length n and decodes each example from its first j
    (`LatentDecoder.prefix_function`); ValueError for a spatial code or j outside 1..n."""

    def __init__(self, decoder, num_codes):
        if decoder.prefix_function is None:
            raise ValueError("only a channel code decodes from a prefix of its codes")
        self.decoder, self.code_shape = decoder, tuple(decoder.latent_shape)  # the whole code's
        self.num_codes = events.check_num_codes(num_codes, self.code_shape[0])
        self.latent_shape = (self.num_codes,) + self.code_shape[1:]
        self.image_shape, self.num_levels = decoder.image_shape, decoder.num_levels

    def decode(self, codes):
        """Checked decode of int codes `[B, j(, C)]` in [0, K) -> float32 `[B, H, W, C]`."""
        codes = pixelcnn.validate_images(
            codes, self.latent_shape, self.decoder.latent_categories, "codes"
        )
        padded = events.pad_codes(codes, self.num_codes, self.code_shape[0])
        lengths = tf.fill(tf.shape(codes)[:1], self.num_codes)
        return self.decoder.prefix_function(padded, lengths)

    def to_levels(self, images):
        """float images in [-1, 1] -> int32 data values in [0, L)."""
        return self.decoder.to_levels(images)


def load_decoder(config):
    """The decoder G of the autoencoder a latent ARM was trained on.

    `config`: an ARM run's config (`tfps.training.load_trained(...)[1]` or `read_config`) or an
    export's metadata; its `dataset` section names the autoencoder checkpoint (`tfps.data.latents`).
    Raises ValueError if the config is not of a latent ARM; CheckpointError / NotFound from
    `autoencoder_training.load_autoencoder`.
    """
    described = latent_description(config)
    if described is None:
        raise ValueError(
            "not an ARM trained on autoencoder latents (its config names no autoencoder_checkpoint)"
        )
    model, ae_config = autoencoder_training.load_autoencoder(described["autoencoder_checkpoint"])
    if list(model.latent_shape) != list(described.get("image_shape", model.latent_shape)):
        raise rundir.CheckpointError(
            f"{described['autoencoder_checkpoint']}: latent shape {model.latent_shape} does not "
            f"match the ARM's {described.get('image_shape')}"
        )
    return LatentDecoder(model, ae_config)


def decoder_for(config):
    """`load_decoder(config)` for a latent ARM, None for an ARM on image data."""
    return load_decoder(config) if is_latent(config) else None


def latent_picture(latents, num_categories):
    """int latents `[B, h, w, c]` -> uint8 RGB `[B, h, c * w, 3]`: the c channels side by side in
    grey (for PNG grids; `tfps.pictures.to_rgb` draws only 1 or 3 channels)."""
    latents = np.asarray(latents)
    b, h, w, c = latents.shape
    side_by_side = latents.transpose(0, 1, 3, 2).reshape(b, h, c * w, 1)
    return pictures.to_rgb(side_by_side, num_categories)


def write_decoded(decoder, latents, output_dir, method):
    """Decodes `latents` and writes `images_<method>.npy` (float32 `[N, H, W, C]` in [-1, 1]) and
    `images_<method>.png` (a grid). Returns `(images, npy_path, png_path)`."""
    images = decoder.decode(latents).numpy()
    npy_path = os.path.join(output_dir, f"images_{method}.npy")
    png_path = os.path.join(output_dir, f"images_{method}.png")
    np.save(npy_path, images.astype(np.float32))
    rgb = pictures.to_rgb(decoder.to_levels(images).numpy(), decoder.num_levels)
    pictures.write_png(png_path, pictures.grid(rgb, scale=pictures.auto_scale(rgb.shape[1])))
    return images, npy_path, png_path
