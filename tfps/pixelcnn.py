"""The autoregressive model (ARM): a categorical PixelCNN++-style network in Keras 3.

Seed 000, Appendix A.1 and Table 4: a PixelCNN++ (Salimans et al. 2017) with one-hot inputs,
categorical outputs (van den Oord et al. 2016b) instead of the logistic mixture, no weight
normalisation, and masking so that channels are autoregressive at each location. The model factorises

    P_ARM(x) = prod_i P_ARM(x_i | x_<i)                                       (eq. 1)

over the raster-then-channel ordering i = (h * W + w) * C + c.

Architecture (one scale, no blind spot):
  * up stream u:       down_shift(ShiftedConv[2,3](x))             sees rows < h
  * up-left stream ul: down_shift(ShiftedConv[1,3](x)) + right_shift(ShiftedConv[2,1] down-right (x))
                                                                    sees pixels before (h, w)
  * `num_resnets` pairs of gated resnets (concat_elu, dropout); ul's resnet takes u as aux input.
  * h = elu(ul): the representation that forecasting heads share (section 2.2, eq. 6).
  * `ChannelAutoregressiveHead` maps h and x[h, w, <c] to logits[h, w, c, :].

Call: `logits, h = model(x)` with x int32 `[B, H, W, C]` in [0, K) ->
logits float32 `[B, H, W, C, K]`, h float32 `[B, H, W, filters]`.
"""
import math

import numpy as np
import tensorflow as tf
import keras

from tfps import layers as tfps_layers

PAPER_DEFAULT = dict(num_resnets=5, filters=162, dropout_rate=0.5)
PAPER_BINARY_MNIST = dict(num_resnets=2, filters=60, dropout_rate=0.5)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class PixelCNN(keras.Model):
    """Categorical PixelCNN ARM. See the module docstring for the architecture.

    Args:
      image_shape: `(H, W, C)` of the modelled variables.
      num_categories: K, the number of values each variable takes (2, 17, 32, 256, ...).
      num_resnets: gated resnets per stream (paper: 5; binary MNIST 2).
      filters: width of both streams (paper: 162; binary MNIST 60).
      dropout_rate: dropout inside the gated resnets during training (paper: 0.5).
      head_hidden: hidden units per channel in the channel head (default: `filters`).
    """

    def __init__(self, image_shape, num_categories, num_resnets=5, filters=162,
                 dropout_rate=0.5, head_hidden=None, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (height, width, channels) >= 1, got {image_shape}")
        if int(num_categories) < 2:
            raise ValueError(f"num_categories must be >= 2, got {num_categories}")
        if int(num_resnets) < 0 or int(filters) < 1:
            raise ValueError(f"need num_resnets >= 0 and filters >= 1, got {num_resnets}, {filters}")
        self.image_shape = image_shape
        self.num_categories = int(num_categories)
        self.num_resnets = int(num_resnets)
        self.filters = int(filters)
        self.dropout_rate = float(dropout_rate)
        self.head_hidden = int(head_hidden or filters)
        f = self.filters
        self.u_init = tfps_layers.ShiftedConv2D(f, (2, 3), "down", name="u_init")
        self.ul_init_up = tfps_layers.ShiftedConv2D(f, (1, 3), "down", name="ul_init_up")
        self.ul_init_left = tfps_layers.ShiftedConv2D(f, (2, 1), "down_right", name="ul_init_left")
        # Blocks are direct attributes, not a list: tf.train.Checkpoint does not track the lists
        # of a Keras 3 layer, and checkpoints must hold every weight.
        for i in range(self.num_resnets):
            setattr(self, f"u_resnet_{i}",
                    tfps_layers.GatedResnet(f, "down", self.dropout_rate, name=f"u_resnet_{i}"))
            setattr(self, f"ul_resnet_{i}",
                    tfps_layers.GatedResnet(f, "down_right", self.dropout_rate, use_aux=True,
                                            name=f"ul_resnet_{i}"))
        self.head = tfps_layers.ChannelAutoregressiveHead(
            image_shape[2], self.num_categories, self.head_hidden, name="channel_head")
        self.build((None,) + image_shape)

    def resnet_pairs(self):
        """[(up block, up-left block)] in order."""
        return [(getattr(self, f"u_resnet_{i}"), getattr(self, f"ul_resnet_{i}"))
                for i in range(self.num_resnets)]

    @property
    def num_variables(self):
        """d = H * W * C, the number of sequential variables."""
        return int(np.prod(self.image_shape))

    @property
    def representation_channels(self):
        return self.filters

    def build(self, input_shape):
        b = input_shape[0]
        h, w, c = self.image_shape
        x_in = (b, h, w, c * self.num_categories + 1)
        stream = (b, h, w, self.filters)
        self.u_init.build(x_in)
        self.ul_init_up.build(x_in)
        self.ul_init_left.build(x_in)
        for u_block, ul_block in self.resnet_pairs():
            u_block.build(stream)
            ul_block.build(stream)
        self.head.build(stream, (b, h, w, c, self.num_categories))
        self.built = True

    def one_hot(self, x):
        """int `[B, H, W, C]` -> float32 one-hot `[B, H, W, C, K]`.

        A float `[B, H, W, C, K]` input is taken as one-hot already and passed through, so that a
        gradient can flow into it (the rate term of `tfps.latent`, straight-through latents).
        """
        x = tf.convert_to_tensor(x)
        if x.dtype.is_floating and x.shape.rank == 5:
            return tf.cast(x, tf.float32)
        return tf.one_hot(tf.cast(x, tf.int32), self.num_categories, dtype=tf.float32)

    def call(self, x, training=False):
        x_onehot = self.one_hot(x)
        shape = tf.shape(x)
        flat = tf.reshape(x_onehot, tf.concat([shape[:3], [-1]], axis=0))
        # A constant ones channel lets the network tell zero padding from zero inputs (PixelCNN++).
        flat = tf.concat([flat, tf.ones_like(flat[..., :1])], axis=-1)
        u = tfps_layers.down_shift(self.u_init(flat))
        ul = (tfps_layers.down_shift(self.ul_init_up(flat))
              + tfps_layers.right_shift(self.ul_init_left(flat)))
        for u_block, ul_block in self.resnet_pairs():
            u = u_block(u, training=training)
            ul = ul_block(ul, aux=u, training=training)
        h = tf.nn.elu(ul)
        logits = self.head(h, x_onehot)
        return logits, h

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape,
                "num_categories": self.num_categories, "num_resnets": self.num_resnets,
                "filters": self.filters, "dropout_rate": self.dropout_rate,
                "head_hidden": self.head_hidden}

    def model_config(self):
        """The constructor arguments as plain JSON-able values (written next to checkpoints)."""
        return {"image_shape": list(self.image_shape), "num_categories": self.num_categories,
                "num_resnets": self.num_resnets, "filters": self.filters,
                "dropout_rate": self.dropout_rate, "head_hidden": self.head_hidden}


def validate_images(x, image_shape, num_categories, name="x"):
    """Checks that `x` is an integer `[B, H, W, C]` batch with values in [0, K).

    Raises ValueError naming the problem (shape, dtype or range). Works on numpy arrays and eager
    tensors; returns the batch as an int32 tensor.
    """
    x = tf.convert_to_tensor(x)
    if not (x.dtype.is_integer or x.dtype.is_bool):
        raise ValueError(f"{name} must hold integer category indices, got dtype {x.dtype.name}")
    expected = tuple(image_shape)
    if x.shape.rank != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"{name} must have shape [batch, {', '.join(map(str, expected))}] "
                         f"(batch, height, width, channels), got {x.shape.as_list()}")
    x = tf.cast(x, tf.int32)
    if tf.size(x) > 0:
        lo, hi = int(tf.reduce_min(x)), int(tf.reduce_max(x))
        if lo < 0 or hi >= num_categories:
            raise ValueError(f"{name} values must lie in [0, {num_categories}), "
                             f"found values in [{lo}, {hi}]")
    return x


def log_prob(logits, x):
    """log P_ARM(x) in nats per example: sum_i log softmax(logits_i)[x_i] (eq. 1). -> `[B]`."""
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(x, tf.int32), logits=logits)
    return -tf.reduce_sum(nll, axis=[1, 2, 3])


def bits_per_dim(logits, x):
    """Negative log-likelihood in bits per dimension, per example: -log2 P(x) / d. -> `[B]`."""
    d = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
    return -log_prob(logits, x) / (d * math.log(2.0))


def build_model(config):
    """PixelCNN from a `model_config()` dict (as written next to checkpoints)."""
    return PixelCNN(**config)
