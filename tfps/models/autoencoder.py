"""The discrete-latent autoencoder and its rate-distortion objective [1, sec. 4.2, App. A.3].

Rate-distortion objective [1, eq. 11], with x normalised to [-1, 1]:

    L(x) = l(x, G(z)) - beta * log P(z),    z = Q(x),    l = MSE,    beta = 0.1

The paper trains the autoencoder first (MSE only: no prior yet; `tfps.train.autoencoder_training`),
freezes it, and then trains the PixelCNN ARM P(z) on the encoder's latents (`tfps.train.latents`).
`autoencoder_loss` takes an optional prior for the rate term; the rate is reported in nats per
image dimension, -log P(z) / (H * W * C), so that it is on the MSE's per-dimension scale.

Encoder Q (width F, "half width" F/2; every convolution but the last is followed by a ReLU):

    conv 3x3 F/2 -> conv 3x3 F/2 -> conv 4x4/2 F/2 -> conv 4x4/2 F -> BasicBlock F -> BasicBlock F
    -> conv 1x1 c * K                                  [B, H, W, C] -> logits a [B, H/4, W/4, c, K]

with BasicBlock(y) = relu(y + bn(conv3x3(relu(bn(conv3x3(y)))))) [2] (torchvision's).
Quantisation: z = onehot(argmax_k softmax(a)_k) in the forward pass, and the straight-through
estimator in the backward pass: dz/da := d softmax(a)/da (`straight_through_one_hot`).
Decoder G mirrors Q:

    conv 1x1 F -> BasicBlock F -> BasicBlock F -> convT 4x4/2 F (ReLU) -> convT 4x4/2 F/2 (ReLU)
    -> conv 3x3 F/2 (ReLU) -> conv 3x3 C               one-hot z [B, h, w, c, K] -> [B, H, W, C]

C is the data's channel count (3 for the paper's colour data, 1 for `digits32`). The paper's
configuration: F = 512, a 4 x 8 x 8 latent (c = 4 channels) with K = 128 categories, 32x32 images
(the preset `configs/paper_latent_autoencoder.py`).

The channel-wise quantised autoencoder of anytime sampling, whose code is a sequence of whole
channel maps with decodable prefixes, is `tfps.models.ordered_code.ChannelAutoencoder`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.

[2]: Kaiming He, Xiangyu Zhang, Shaoqing Ren and Jian Sun. Deep Residual Learning for Image
     Recognition. In CVPR, 2016.
"""

import math

import keras
import tensorflow as tf

from tfps.models import layers as tfps_layers

BETA = 0.1
DOWNSAMPLING = 4  # two stride-2 convolutions


# ----------------------------------------------------------------------------- quantisation


def straight_through_one_hot(logits):
    """One-hot argmax of softmax(logits) with the softmax's gradient (straight-through).

    Forward: z = onehot(argmax_k a_k), exactly 0 / 1. Backward: the vector-Jacobian product of
    s = softmax(a), dL/da = s * (dL/dz - sum_k s_k dL/dz_k), as if z were s.
    `[..., K]` -> `[..., K]`.
    """

    @tf.custom_gradient
    def quantise(a):
        probs = tf.nn.softmax(a)
        one_hot = tf.one_hot(tf.argmax(a, axis=-1), a.shape[-1], dtype=a.dtype)

        def grad(dz):
            return probs * (dz - tf.reduce_sum(dz * probs, axis=-1, keepdims=True))

        return one_hot, grad

    return quantise(logits)


# ----------------------------------------------------------------------------- layers


def _conv(filters, kernel, strides=1, use_bias=True, name=None):
    # TF's "same" padding for a 4x4 / stride 2 kernel on even sizes pads 1 on each side: the
    # paper's padding 1; for 3x3 it is padding 1 too.
    return keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=use_bias, name=name
    )


def _batch_norm(name):
    # PyTorch's BatchNorm2d defaults: running-average momentum 0.1 (Keras: 0.9), eps 1e-5.
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class BasicBlock(keras.layers.Layer):
    """ResNet BasicBlock [2] (torchvision's, without downsampling).

        y = relu(x + bn2(conv2(relu(bn1(conv1(x))))))       conv: 3x3, `filters`, no bias

    Keeps the shape `[B, H, W, filters]`; the input must have `filters` channels.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv1 = _conv(self.filters, 3, use_bias=False, name="conv1")
        self.bn1 = _batch_norm("bn1")
        self.conv2 = _conv(self.filters, 3, use_bias=False, name="conv2")
        self.bn2 = _batch_norm("bn2")

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"BasicBlock({self.filters}) needs {self.filters} input channels, "
                f"got {input_shape[-1]}"
            )
        for layer in (self.conv1, self.bn1, self.conv2, self.bn2):
            layer.build(input_shape)

    def call(self, x, training=False):
        y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        return tf.nn.relu(x + self.bn2(self.conv2(y), training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _check_width(width):
    if int(width) < 2 or int(width) % 2:
        raise ValueError(f"width must be an even number >= 2, got {width}")
    return int(width)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class Encoder(keras.layers.Layer):
    """Q: images `[B, H, W, C]` in [-1, 1] -> latent logits a `[B, H/4, W/4, c, K]`.

    See the module docstring for the layers; `width` F (paper 512), c `latent_channels`,
    K `latent_categories`.
    """

    def __init__(self, width, latent_channels, latent_categories, **kwargs):
        super().__init__(**kwargs)
        self.width = _check_width(width)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        half = self.width // 2
        self.conv_in1 = _conv(half, 3, name="conv_in1")
        self.conv_in2 = _conv(half, 3, name="conv_in2")
        self.down1 = _conv(half, 4, strides=2, name="down1")
        self.down2 = _conv(self.width, 4, strides=2, name="down2")
        self.block1 = BasicBlock(self.width, name="block1")
        self.block2 = BasicBlock(self.width, name="block2")
        self.to_latent = _conv(self.latent_channels * self.latent_categories, 1, name="to_latent")

    def build(self, input_shape):
        b, h, w, _ = input_shape
        half = self.width // 2
        self.conv_in1.build(input_shape)
        self.conv_in2.build((b, h, w, half))
        self.down1.build((b, h, w, half))
        quarter = (b, None if h is None else h // 4, None if w is None else w // 4)
        self.down2.build((b, None if h is None else h // 2, None if w is None else w // 2, half))
        for layer in (self.block1, self.block2, self.to_latent):
            layer.build(quarter + (self.width,))

    def call(self, x, training=False):
        y = tf.nn.relu(self.conv_in1(x))
        y = tf.nn.relu(self.conv_in2(y))
        y = tf.nn.relu(self.down1(y))
        y = tf.nn.relu(self.down2(y))
        y = self.block2(self.block1(y, training=training), training=training)
        logits = self.to_latent(y)
        shape = tf.shape(logits)
        return tf.reshape(
            logits, tf.concat([shape[:3], [self.latent_channels, self.latent_categories]], axis=0)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "latent_channels": self.latent_channels,
            "latent_categories": self.latent_categories,
        }


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class Decoder(keras.layers.Layer):
    """G: one-hot latents `[B, h, w, c, K]` -> images `[B, 4h, 4w, output_channels]` (~[-1, 1]).

    Mirrors `Encoder` (module docstring); the output is linear (the MSE target is in [-1, 1]).
    """

    def __init__(self, width, latent_channels, latent_categories, output_channels, **kwargs):
        super().__init__(**kwargs)
        self.width = _check_width(width)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        self.output_channels = int(output_channels)
        half = self.width // 2
        self.from_latent = _conv(self.width, 1, name="from_latent")
        self.block1 = BasicBlock(self.width, name="block1")
        self.block2 = BasicBlock(self.width, name="block2")
        self.up1 = keras.layers.Conv2DTranspose(
            self.width, 4, strides=2, padding="same", name="up1"
        )
        self.up2 = keras.layers.Conv2DTranspose(half, 4, strides=2, padding="same", name="up2")
        self.conv_out1 = _conv(half, 3, name="conv_out1")
        self.conv_out2 = _conv(self.output_channels, 3, name="conv_out2")

    def build(self, input_shape):
        b, h, w = input_shape[:3]

        def scaled(s, f):
            return None if s is None else s * f

        half = self.width // 2
        self.from_latent.build((b, h, w, self.latent_channels * self.latent_categories))
        for layer in (self.block1, self.block2, self.up1):
            layer.build((b, h, w, self.width))
        self.up2.build((b, scaled(h, 2), scaled(w, 2), self.width))
        self.conv_out1.build((b, scaled(h, 4), scaled(w, 4), half))
        self.conv_out2.build((b, scaled(h, 4), scaled(w, 4), half))

    def call(self, z, training=False):
        shape = tf.shape(z)
        flat = tf.reshape(z, tf.concat([shape[:3], [-1]], axis=0))
        y = self.from_latent(flat)
        y = self.block2(self.block1(y, training=training), training=training)
        y = tf.nn.relu(self.up1(y))
        y = tf.nn.relu(self.up2(y))
        y = tf.nn.relu(self.conv_out1(y))
        return self.conv_out2(y)

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "latent_channels": self.latent_channels,
            "latent_categories": self.latent_categories,
            "output_channels": self.output_channels,
        }


def check_arguments(image_shape, num_levels, latent_channels, latent_categories):
    """Raises ValueError unless the arguments suit an autoencoder; returns `image_shape` as a
    tuple of ints. (`width` is checked by the encoder and decoder.)"""
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (height, width, channels), got {image_shape}")
    if image_shape[0] % DOWNSAMPLING or image_shape[1] % DOWNSAMPLING:
        raise ValueError(
            f"image height and width must be divisible by {DOWNSAMPLING} (two "
            f"stride-2 convolutions), got {image_shape}"
        )
    if int(num_levels) < 2 or int(latent_categories) < 2 or int(latent_channels) < 1:
        raise ValueError(
            f"need num_levels >= 2, latent_categories >= 2 and latent_channels "
            f">= 1, got {num_levels}, {latent_categories}, {latent_channels}"
        )
    return image_shape


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class DiscreteAutoencoder(keras.Model):
    """Encoder Q, straight-through argmax quantisation and decoder G (module docstring).

    Args:
      image_shape: `(H, W, C)` of the data; H and W divisible by 4.
      num_levels: L, the number of data values (256 for 8-bit data); x in [0, L) is normalised
        to 2 x / (L - 1) - 1 in [-1, 1].
      width: F, channels of the full-width layers (paper: 512).
      latent_channels: c (paper: 4).
      latent_categories: K (paper: 128).

    Call: `x_hat, z, logits = model(x)` with x int `[B, H, W, C]` -> x_hat float32 `[B, H, W, C]`
    (normalised scale), z one-hot float32 `[B, h, w, c, K]`, logits `[B, h, w, c, K]`.
    """

    def __init__(
        self, image_shape, num_levels, width=512, latent_channels=4, latent_categories=128, **kwargs
    ):
        super().__init__(**kwargs)
        image_shape = check_arguments(image_shape, num_levels, latent_channels, latent_categories)
        self.image_shape = image_shape
        self.num_levels = int(num_levels)
        self.width = _check_width(width)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        self.encoder = Encoder(
            self.width, self.latent_channels, self.latent_categories, name="encoder"
        )
        self.decoder = Decoder(
            self.width, self.latent_channels, self.latent_categories, image_shape[2], name="decoder"
        )
        self.build((None,) + image_shape)

    @property
    def latent_shape(self):
        """`(h, w, c)` = `(H / 4, W / 4, latent_channels)`: the ARM's image shape."""
        h, w, _ = self.image_shape
        return (h // DOWNSAMPLING, w // DOWNSAMPLING, self.latent_channels)

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((input_shape[0],) + self.latent_shape + (self.latent_categories,))
        self.built = True

    def normalise(self, x):
        """int `[B, H, W, C]` in [0, L) -> float32 in [-1, 1]: 2 x / (L - 1) - 1."""
        return tf.cast(x, tf.float32) * (2.0 / (self.num_levels - 1)) - 1.0

    def to_levels(self, images):
        """float `[B, H, W, C]` (normalised scale) -> int32 data values in [0, L), rounded."""
        levels = tf.round((tf.cast(images, tf.float32) + 1.0) * (0.5 * (self.num_levels - 1)))
        return tf.cast(tf.clip_by_value(levels, 0.0, self.num_levels - 1.0), tf.int32)

    def encode(self, x, training=False):
        """Q(x): int images `[B, H, W, C]` -> int32 latents `[B, h, w, c]` in [0, K)."""
        logits = self.encoder(self.normalise(x), training=training)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def decode(self, z, training=False):
        """G(z): int32 latents `[B, h, w, c]` or one-hot `[B, h, w, c, K]` -> float32 images."""
        z = tf.convert_to_tensor(z)
        if z.dtype.is_integer:
            z = tf.one_hot(z, self.latent_categories, dtype=tf.float32)
        return self.decoder(z, training=training)

    def call(self, x, training=False):
        logits = self.encoder(self.normalise(x), training=training)
        z = straight_through_one_hot(logits)
        return self.decoder(z, training=training), z, logits

    def get_config(self):
        return {**super().get_config(), **self.model_config()}

    def model_config(self):
        """The constructor arguments as plain JSON-able values (written next to checkpoints)."""
        return {
            "image_shape": list(self.image_shape),
            "num_levels": self.num_levels,
            "width": self.width,
            "latent_channels": self.latent_channels,
            "latent_categories": self.latent_categories,
        }


def build_autoencoder(config):
    """DiscreteAutoencoder from a `model_config()` dict."""
    return DiscreteAutoencoder(**config)


# ----------------------------------------------------------------------------- objective


def rate(prior, z, image_dims, training=False):
    """-log P(z) in nats per image dimension, per example: `[B]`.

    `prior` maps one-hot z `[B, h, w, c, K]` to `(logits [B, h, w, c, K], h)` (a
    `tfps.models.pixelcnn.PixelCNN` accepts one-hot input); the gradient flows into z, hence through
    the straight-through estimator into the encoder, and into the prior's weights.
    """
    logits, _ = prior(z, training=training)
    log_p = tf.reduce_sum(z * tf.nn.log_softmax(tf.cast(logits, tf.float32)), axis=[1, 2, 3, 4])
    return -log_p / float(image_dims)


def autoencoder_loss(model, x, prior=None, beta=BETA, training=True):
    """Eq. 11: MSE(x, G(z)) + beta * rate(z), z = Q(x); the rate only when `prior` is given.

    x: int `[B, H, W, C]` in [0, L); the MSE is on the [-1, 1] scale, averaged over all
    B * H * W * C values; the rate is -log P(z) / (H * W * C) averaged over the batch (`rate`).
    Returns `(total, {"mse": ..., ["rate": ...]})`.
    """
    x_hat, z, _ = model(x, training=training)
    mse = tf.reduce_mean(tf.square(x_hat - model.normalise(x)))
    values = {"mse": mse}
    total = mse
    if prior is not None:
        values["rate"] = tf.reduce_mean(rate(prior, z, math.prod(model.image_shape), training))
        total = total + beta * values["rate"]
    return total, values
