"""The ordered discrete autoencoder of anytime sampling [1]: channel-wise quantisation, prefix
decoding and the ordered (random prefix length) objective.

Channel-wise quantisation [1, sec. 4]: the encoder Q (`tfps.models.autoencoder.Encoder`, one
output per latent channel) maps an image to n continuous channel maps e_1 .. e_n of h x w =
H/4 x W/4 each; each whole map is replaced by its nearest entry of one codebook of K maps
c_1 .. c_K (shared by the channels),

    z_i = argmin_k || e_i - c_k ||^2,      i = 1 .. n,           codes z `[B, n]` in [0, K),

so the code is a sequence of n indices, one per channel (`DiscreteAutoencoder`'s spatial
quantisation has one index per latent pixel and channel). The decoder G
(`tfps.models.autoencoder.Decoder`) maps the quantised maps c_{z_1} .. c_{z_n} back to an image.

Prefix decoding [1]: `decode(z, num_codes=j)` replaces the maps of the codes after the j-th by
zeros before G (selected with `tf.where`, not multiplied, so not even a NaN passes), hence it is a
function of z_1 .. z_j alone.

Ordered objective [1, the ordered VQ-VAE]: the VQ-VAE loss [2] on a random prefix,

    L_j = || x - G(c_{z_<=j}, 0, ..., 0) ||^2 + || sg[e_<=j] - c_{z_<=j} ||^2
          + beta || e_<=j - sg[c_{z_<=j}] ||^2,                  j ~ U{1, ..., n} per batch,

whose expectation is [1]'s average over the prefix lengths, (1/n) sum_j L_j: the first codes must
carry what matters most (coarse to fine, like PCA). sg is stop-gradient; G's input passes the
gradient straight through the quantiser, e + sg[c_z - e] [2]. The unordered VQ-VAE, j = n always,
is the control. Squared errors are means: the reconstruction over all B * H * W * C values on the
[-1, 1] scale (as `tfps.models.autoencoder.autoencoder_loss`), the codebook and commitment terms
over the B * h * w * j values of the prefix maps. beta = 0.25 [2].

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.

[2]: Aaron van den Oord, Oriol Vinyals and Koray Kavukcuoglu. Neural Discrete Representation
     Learning. In NeurIPS, 2017.
"""

import math
import numbers

import keras
import tensorflow as tf

from tfps.models import autoencoder
from tfps.models import layers as tfps_layers
from tfps.sampling import events

SPATIAL, CHANNEL = "spatial", "channel"
QUANTIZATIONS = (SPATIAL, CHANNEL)
COMMITMENT = 0.25  # beta of [2]
PARTS = 8  # prefix fractions 1/8 ... 8/8 of the code, as [1, Figure 3]


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class ChannelAutoencoder(keras.Model):
    """Encoder Q, channel-wise quantisation to a codebook of K maps, and decoder G [1].

    Args:
      image_shape: `(H, W, C)` of the data; H and W divisible by 4.
      num_levels: L, the number of data values; x in [0, L) is normalised to [-1, 1] as in
        `tfps.models.autoencoder.DiscreteAutoencoder`.
      width: F, channels of the full-width layers of Q and G (`tfps.models.autoencoder`).
      latent_channels: n, the code length: channel maps, each one code.
      latent_categories: K, the codebook size (maps of h x w = H/4 x W/4).

    `encode(x)` -> int32 codes `[B, n]`; `decode(codes, num_codes=j)` -> images from the first j
    codes; `model(x)` -> `(x_hat, codes, maps)`, the full-code reconstruction `[B, H, W, C]`, the
    codes and the encoder's continuous maps e `[B, h, w, n]`.
    """

    quantization = CHANNEL
    # The spatial autoencoder's methods, on the same attributes: data scaling, and `arguments()`,
    # the constructor arguments as plain JSON-able values.
    normalise = autoencoder.DiscreteAutoencoder.normalise
    to_levels = autoencoder.DiscreteAutoencoder.to_levels
    arguments = autoencoder.DiscreteAutoencoder.model_config

    def __init__(
        self, image_shape, num_levels, width=512, latent_channels=16, latent_categories=128,
        **kwargs,
    ):  # fmt: skip
        super().__init__(**kwargs)
        self.image_shape = autoencoder.check_arguments(
            image_shape, num_levels, latent_channels, latent_categories
        )
        self.num_levels = int(num_levels)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        # One output per channel: the layers of the spatial autoencoder with one "category".
        self.encoder = autoencoder.Encoder(width, self.latent_channels, 1, name="encoder")
        self.decoder = autoencoder.Decoder(
            width, self.latent_channels, 1, self.image_shape[2], name="decoder"
        )
        self.width = self.encoder.width
        self.build((None,) + self.image_shape)

    @property
    def latent_shape(self):
        """`(n,)`: the code is a sequence of n indices in [0, K) (the prior's event shape)."""
        return (self.latent_channels,)

    @property
    def map_shape(self):
        """`(h, w)` = `(H / 4, W / 4)`: the shape of one channel map, one codebook entry."""
        h, w, _ = self.image_shape
        return (h // autoencoder.DOWNSAMPLING, w // autoencoder.DOWNSAMPLING)

    def build(self, input_shape):
        h, w = self.map_shape
        self.encoder.build(input_shape)
        self.decoder.build((input_shape[0], h, w, self.latent_channels, 1))
        if not hasattr(self, "codebook"):
            bound = 1.0 / self.latent_categories  # [2]'s initialisation, U(-1/K, 1/K)
            self.codebook = self.add_weight(
                shape=(self.latent_categories, h * w),
                initializer=keras.initializers.RandomUniform(-bound, bound),
                name="codebook",
            )
        self.built = True

    def encode_maps(self, x, training=False):
        """Q(x): int images `[B, H, W, C]` -> the continuous maps e, float32 `[B, h, w, n]`."""
        maps = self.encoder(self.normalise(x), training=training)[..., 0]
        return tf.cast(maps, tf.float32)

    def quantise(self, maps):
        """float maps `[B, h, w, n]` -> int32 `[B, n]`: each map's nearest codebook entry."""
        flat = tf.transpose(tf.cast(maps, tf.float32), [0, 3, 1, 2])
        flat = tf.reshape(flat, [tf.shape(flat)[0], self.latent_channels, -1])  # [B, n, h * w]
        codebook = tf.convert_to_tensor(self.codebook)
        distances = (
            tf.reduce_sum(tf.square(flat), axis=-1, keepdims=True)
            - 2.0 * tf.einsum("bnd,kd->bnk", flat, codebook)
            + tf.reduce_sum(tf.square(codebook), axis=-1)
        )
        return tf.argmin(distances, axis=-1, output_type=tf.int32)

    def code_maps(self, codes):
        """int codes `[B, n]` -> their codebook maps c_z, float32 `[B, h, w, n]`."""
        maps = tf.gather(tf.convert_to_tensor(self.codebook), codes)  # [B, n, h * w]
        h, w = self.map_shape
        maps = tf.reshape(maps, [tf.shape(maps)[0], self.latent_channels, h, w])
        return tf.transpose(maps, [0, 2, 3, 1])

    def encode(self, x, training=False):
        """int images `[B, H, W, C]` -> int32 codes `[B, n]` in [0, K)."""
        return self.quantise(self.encode_maps(x, training=training))

    def decode(self, codes, num_codes=None, training=False):
        """G of the first `num_codes` codes: int codes `[B, n]` -> float32 images `[B, H, W, C]`.

        `num_codes`: j in 1..n (None: n), an int or an int tensor, scalar or `[B]` (one length per
        example; `prefix_mask`); the codes after the j-th are ignored (module docstring).
        """
        return self.decode_maps(self.code_maps(codes), num_codes, training=training)

    def decode_maps(self, maps, num_codes=None, training=False):
        """G of the first `num_codes` channel maps `[B, h, w, n]` (the rest zeroed)."""
        maps = prefix(maps, self.latent_channels, num_codes)
        return tf.cast(self.decoder(maps[..., None], training=training), tf.float32)

    def call(self, x, training=False):
        maps = self.encode_maps(x, training=training)
        codes = self.quantise(maps)
        return self.decode(codes, training=training), codes, maps

    def get_config(self):
        return {**super().get_config(), **self.arguments()}

    def model_config(self):
        """The constructor arguments and `quantization` (written next to checkpoints; rebuilt by
        `autoencoder_from_config`)."""
        return {**self.arguments(), "quantization": CHANNEL}


def autoencoder_from_config(config):
    """The autoencoder of a `model_config()` dict: a `ChannelAutoencoder` when its `quantization`
    is "channel", else (also when absent: runs from before the option) a `DiscreteAutoencoder`."""
    config = dict(config)
    quantization = config.pop("quantization", SPATIAL)
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization == CHANNEL:
        return ChannelAutoencoder(**config)
    return autoencoder.build_autoencoder(config)


# ----------------------------------------------------------------------------- prefixes


def prefix_mask(num_codes, code_length):
    """bool `[1 or B, 1, 1, n]`: True at the channels of the first `num_codes` codes (None: all).

    `num_codes`: an int (checked, `tfps.sampling.events.check_num_codes`) or an int tensor,
    scalar or `[B]` (not checked: in a traced function a value below 1 keeps no code, one above n
    all n)."""
    if num_codes is None:
        num_codes = code_length
    elif isinstance(num_codes, numbers.Integral):
        num_codes = events.check_num_codes(num_codes, code_length)
    mask = tf.sequence_mask(num_codes, code_length)  # [n] or [B, n]
    return tf.reshape(mask, [-1, 1, 1, code_length])


def prefix(maps, code_length, num_codes=None):
    """`maps` `[B, h, w, n]` with the channels after the first `num_codes` set to zero."""
    if num_codes is None:
        return maps
    mask = prefix_mask(num_codes, code_length)
    return tf.where(mask, maps, tf.zeros_like(maps))


def random_prefix_length(seed, code_length):
    """j ~ U{1, ..., code_length}, int32 scalar, from a stateless int32 `[2]` seed."""
    return tf.random.stateless_uniform([], seed, minval=1, maxval=code_length + 1, dtype=tf.int32)


def prefix_lengths(code_length, parts=PARTS):
    """`{"k_8": j}` for k = 1..8: j = ceil(k n / 8), the codes in the fraction k/8 of the code
    (at least 1; n / 8 codes need not be whole, so short codes repeat lengths)."""
    return {f"{k}_{parts}": max(1, -(-k * code_length // parts)) for k in range(1, parts + 1)}


def num_codes_of(value, code_length):
    """The prefix length j that `value` names: a whole number of codes (`6`, `"6"`) or a fraction of
    the code (`"0.6"`, `"60%"`: ceil(f n), as `code_lengths` rounds). ValueError for anything else
    or a length outside 1..code_length."""
    text = str(value).strip()
    if text.isdigit():
        return events.check_num_codes(int(text), code_length)
    try:
        fraction = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        fraction = math.nan
    if not 0 < fraction <= 1:  # also NaN
        raise ValueError(
            f"num_codes must be a number of codes in 1..{code_length} or a fraction of the code in "
            f"(0, 1] (0.6 or 60%), got {value!r}"
        )
    return max(1, math.ceil(round(fraction * code_length, 6)))


def code_lengths(code_length, parts=PARTS):
    """The prefix lengths of the fractions 1/parts .. parts/parts of the code, without repeats."""
    return sorted(set(prefix_lengths(code_length, parts).values()))


# ----------------------------------------------------------------------------- objective


def ordered_loss(model, x, num_codes=None, commitment=COMMITMENT, training=True):
    """The VQ-VAE objective [2] on the prefix of `num_codes` codes [1] (module docstring).

    `model`: a `ChannelAutoencoder`; x int `[B, H, W, C]` in [0, L); `num_codes`: j (int or int32
    scalar tensor; None: all n, the unordered VQ-VAE). Returns `(total, {"mse", "codebook",
    "commitment"})`, total = mse + codebook + commitment * commitment term.
    """
    maps = model.encode_maps(x, training=training)
    quantised = model.code_maps(model.quantise(maps))
    through = maps + tf.stop_gradient(quantised - maps)  # straight through the quantiser [2]
    x_hat = model.decode_maps(through, num_codes, training=training)
    mse = tf.reduce_mean(tf.square(x_hat - model.normalise(x)))
    weights = tf.broadcast_to(
        tf.cast(prefix_mask(num_codes, model.latent_channels), tf.float32), tf.shape(maps)
    )

    def on_prefix(squared):
        return tf.reduce_sum(squared * weights) / tf.reduce_sum(weights)

    values = {
        "mse": mse,
        "codebook": on_prefix(tf.square(tf.stop_gradient(maps) - quantised)),
        "commitment": on_prefix(tf.square(maps - tf.stop_gradient(quantised))),
    }
    total = mse + values["codebook"] + float(commitment) * values["commitment"]
    return total, values


def training_loss(model, ordered, commitment=COMMITMENT, ordered_from_step=0):
    """The trainer's `loss(x, seed, step) -> (total, values)` (`tfps.train.trainer.Task`, which
    passes the step): ordered, a prefix length j ~ U{1..n} drawn from the step's seed for each
    batch [1], from step `ordered_from_step` on (before it all n codes: [1]'s pretraining at full
    length, then the ordered fine-tuning, in one run); else all n codes."""

    def loss(x, seed, step):
        num_codes = None
        if ordered:
            n = model.latent_channels
            random = random_prefix_length(seed, n)
            num_codes = tf.where(tf.cast(step, tf.int64) >= ordered_from_step, random, n)
        total, values = ordered_loss(model, x, num_codes, commitment, training=True)
        return tf.cast(total, tf.float32), values

    return loss
