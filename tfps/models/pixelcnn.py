"""The autoregressive model (ARM): a categorical PixelCNN++-style network in Keras 3.

[1, Appendix A.1, Table 4]: a PixelCNN++ [2] with one-hot inputs, categorical outputs [3]
instead of the logistic mixture, no weight normalisation, and masking so that channels are
autoregressive at each location. The model factorises

    P_ARM(x) = prod_i P_ARM(x_i | x_<i)                                       [1, eq. 1]

over the raster-then-channel ordering i = (h * W + w) * C + c.

Architecture (no blind spot):
  * up stream u:       down_shift(ShiftedConv[2,3](x))             sees rows < h
  * up-left stream ul: down_shift(ShiftedConv[1,3](x))
                       + right_shift(ShiftedConv[2,1] down-right (x))  sees pixels before (h, w)
  * `num_scales=1` (the default): `num_resnets` pairs of gated resnets (concat_elu, dropout); ul's
    resnet takes u as aux input.
  * `num_scales=S > 1`: the PixelCNN++ hierarchy [2, Figure 2], as in the paper's models
    ([1, Appendix A.1]: three scales). An up pass of `num_resnets` pairs per scale with a
    stride-2 shifted convolution between scales (28 -> 14 -> 7), then a down pass back up the
    scales (`num_resnets` pairs at the coarsest, `num_resnets + 1` at the others, stride-2 shifted
    transposed convolutions between them), each down-pass block taking the up pass's output at the
    same place as aux input (u: the u skip; ul: [u, ul skip]). The receptive field covers every
    earlier pixel for `num_scales=3` on 28x28 images.
  * h = elu(ul): the representation that forecasting heads share [1, sec. 2.2, eq. 6].
  * `ChannelAutoregressiveHead` maps h and x[h, w, <c] to logits[h, w, c, :].

Call: `logits, h = model(x)` with x int32 `[B, H, W, C]` in [0, K) ->
logits float32 `[B, H, W, C, K]`, h float32 `[B, H, W, filters]`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
     PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. In ICLR, 2017.

[3]: Aaron van den Oord, Nal Kalchbrenner, Koray Kavukcuoglu. Pixel Recurrent Neural Networks.
     In ICML, 2016.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfps.models import layers as tfps_layers
from tfps.sampling import events, protocol

PAPER_DEFAULT = dict(num_resnets=5, filters=162, dropout_rate=0.5, num_scales=3)
PAPER_BINARY_MNIST = dict(num_resnets=2, filters=60, dropout_rate=0.5, num_scales=3)
# Constructor arguments added after the first release, with the value that older configs
# (config.json, exported SavedModels) meant by leaving them out.
CONFIG_DEFAULTS = dict(num_scales=1)


def max_num_scales(image_shape):
    """The most scales an `(H, W, ...)` image allows: the coarsest is at least one pixel,
    2 ** (num_scales - 1) <= min(H, W)."""
    return int(min(image_shape[:2])).bit_length()


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
      num_scales: resolutions of the PixelCNN++ hierarchy (1: one scale, no down pass; paper: 3).
    """

    def __init__(
        self,
        image_shape,
        num_categories,
        num_resnets=5,
        filters=162,
        dropout_rate=0.5,
        head_hidden=None,
        num_scales=1,
        **kwargs,
    ):
        # Over 60 lines: every layer of the network is built here, in the order the forward pass
        # uses them (Keras creates weights in `build`; this is the network's one declaration).
        super().__init__(**kwargs)
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(
                f"image_shape must be (height, width, channels) >= 1, got {image_shape}"
            )
        if int(num_categories) < 2:
            raise ValueError(f"num_categories must be >= 2, got {num_categories}")
        if int(num_resnets) < 0 or int(filters) < 1:
            raise ValueError(
                f"need num_resnets >= 0 and filters >= 1, got {num_resnets}, {filters}"
            )
        if int(num_scales) < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        if int(num_scales) > max_num_scales(image_shape):
            raise ValueError(
                f"num_scales={num_scales} halves a {image_shape[0]}x{image_shape[1]} "
                f"image below one pixel; use at most {max_num_scales(image_shape)}"
            )
        self.image_shape = image_shape
        self.num_categories = int(num_categories)
        self.num_resnets = int(num_resnets)
        self.filters = int(filters)
        self.dropout_rate = float(dropout_rate)
        self.head_hidden = int(head_hidden or filters)
        self.num_scales = int(num_scales)
        f = self.filters
        self.u_init = tfps_layers.ShiftedConv2D(f, (2, 3), "down", name="u_init")
        self.ul_init_up = tfps_layers.ShiftedConv2D(f, (1, 3), "down", name="ul_init_up")
        self.ul_init_left = tfps_layers.ShiftedConv2D(f, (2, 1), "down_right", name="ul_init_left")
        # Blocks are direct attributes, not a list: tf.train.Checkpoint does not track the lists
        # of a Keras 3 layer, and checkpoints must hold every weight.
        for name in self._block_names():
            setattr(
                self,
                f"u_{name}",
                tfps_layers.GatedResnet(
                    f, "down", self.dropout_rate, use_aux=name.startswith("down_"), name=f"u_{name}"
                ),
            )
            setattr(
                self,
                f"ul_{name}",
                tfps_layers.GatedResnet(
                    f, "down_right", self.dropout_rate, use_aux=True, name=f"ul_{name}"
                ),
            )
        for scale in range(1, self.num_scales):
            setattr(
                self,
                f"u_downsample_{scale}",
                tfps_layers.ShiftedConv2D(
                    f, (2, 3), "down", strides=2, name=f"u_downsample_{scale}"
                ),
            )
            setattr(
                self,
                f"ul_downsample_{scale}",
                tfps_layers.ShiftedConv2D(
                    f, (2, 2), "down_right", strides=2, name=f"ul_downsample_{scale}"
                ),
            )
            setattr(
                self,
                f"u_upsample_{scale}",
                tfps_layers.ShiftedConv2DTranspose(f, "down", name=f"u_upsample_{scale}"),
            )
            setattr(
                self,
                f"ul_upsample_{scale}",
                tfps_layers.ShiftedConv2DTranspose(f, "down_right", name=f"ul_upsample_{scale}"),
            )
        self.head = tfps_layers.ChannelAutoregressiveHead(
            image_shape[2], self.num_categories, self.head_hidden, name="channel_head"
        )
        self.build((None,) + image_shape)

    def _block_names(self, scale=None, down=False):
        """Names of the gated-resnet pairs (attribute suffixes), in call order.

        One scale keeps the original names `resnet_i` (checkpoints from before `num_scales` load).
        Several scales: `up_s_i` (the up pass at scale s, 0 = full resolution) and `down_s_i`.
        Without arguments: every pair of the model.
        """
        if self.num_scales == 1:
            return [f"resnet_{i}" for i in range(self.num_resnets)]
        if scale is None:
            return [n for s in range(self.num_scales) for n in self._block_names(s)] + [
                n for s in reversed(range(self.num_scales)) for n in self._block_names(s, down=True)
            ]
        if not down:
            return [f"up_{scale}_{i}" for i in range(self.num_resnets)]
        count = self.num_resnets + (0 if scale == self.num_scales - 1 else 1)
        return [f"down_{scale}_{i}" for i in range(count)]

    def resnet_pairs(self, scale=None, down=False):
        """[(up-stream block, up-left-stream block)] in call order (see `_block_names`)."""
        return [
            (getattr(self, f"u_{name}"), getattr(self, f"ul_{name}"))
            for name in self._block_names(scale, down)
        ]

    @property
    def num_variables(self):
        """d = H * W * C, the number of sequential variables."""
        return int(np.prod(self.image_shape))

    @property
    def event_shape(self):
        """The ARM protocol's event shape (`tfps.models.arms`): the image shape `(H, W, C)`."""
        return self.image_shape

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
        if self.num_scales == 1:
            for u_block, ul_block in self.resnet_pairs():
                u_block.build(stream)
                ul_block.build(stream)
        else:
            # Only channel counts matter to these layers; spatial sizes are left open.
            at_scale = (b, None, None, self.filters)
            skip_pair = (b, None, None, 2 * self.filters)
            for scale in range(self.num_scales):
                for u_block, ul_block in self.resnet_pairs(scale):
                    u_block.build(at_scale)
                    ul_block.build(at_scale)
                for u_block, ul_block in self.resnet_pairs(scale, down=True):
                    u_block.build(at_scale, at_scale)
                    ul_block.build(at_scale, skip_pair)
            for scale in range(1, self.num_scales):
                for stream_name in ("u", "ul"):
                    getattr(self, f"{stream_name}_downsample_{scale}").build(at_scale)
                    getattr(self, f"{stream_name}_upsample_{scale}").build(at_scale)
        self.head.build(stream, (b, h, w, c, self.num_categories))
        self.built = True

    def one_hot(self, x):
        """int `[B, H, W, C]` -> float32 one-hot `[B, H, W, C, K]`.

        A float `[B, H, W, C, K]` input is taken as one-hot already and passed through, so that a
        gradient can flow into it (the rate term of `tfps.train.latents`, straight-through latents).
        """
        x = tf.convert_to_tensor(x)
        if x.dtype.is_floating and x.shape.rank == 5:
            return tf.cast(x, tf.float32)
        return tf.one_hot(tf.cast(x, tf.int32), self.num_categories, dtype=tf.float32)

    def call(self, x, training=False, rows=None):
        """`rows`: a row band (`tfps.sampling.incremental`): x holds only the band's rows, and so do
        the outputs; every shifted convolution takes the rows above the band from the band's
        cache."""
        x_onehot = self.one_hot(x)
        shape = tf.shape(x)
        channels = x_onehot.shape[-2] * x_onehot.shape[-1]  # C K, static
        flat = tf.reshape(x_onehot, tf.concat([shape[:3], [channels]], axis=0))
        # A constant ones channel lets the network tell zero padding from zero inputs [2].
        flat = tf.concat([flat, tf.ones_like(flat[..., :1])], axis=-1)
        u = tfps_layers.down_shift(self.u_init(flat, rows=rows), rows)
        ul = tfps_layers.down_shift(self.ul_init_up(flat, rows=rows), rows) + (
            tfps_layers.right_shift(self.ul_init_left(flat, rows=rows))
        )
        if self.num_scales == 1:
            for u_block, ul_block in self.resnet_pairs():
                u = u_block(u, training=training, rows=rows)
                ul = ul_block(ul, aux=u, training=training, rows=rows)
        else:
            u, ul = self._hierarchy(u, ul, training, rows)
        h = tf.nn.elu(ul)
        logits = tf.cast(self.head(h, x_onehot), tf.float32)  # float32 under mixed precision too
        return logits, h

    def get_config(self):
        return {**super().get_config(), **self.model_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**{k: v for k, v in config.items() if k != "arch"})

    def _hierarchy(self, u, ul, training, rows=None):
        """The multi-scale PixelCNN++ body: up pass, then down pass with skips. -> (u, ul)."""
        u_skips, ul_skips = [u], [ul]
        for scale in range(self.num_scales):
            if scale > 0:
                u = getattr(self, f"u_downsample_{scale}")(u, rows=rows)
                ul = getattr(self, f"ul_downsample_{scale}")(ul, rows=rows)
                u_skips.append(u)
                ul_skips.append(ul)
            for u_block, ul_block in self.resnet_pairs(scale):
                u = u_block(u, training=training, rows=rows)
                ul = ul_block(ul, aux=u, training=training, rows=rows)
                u_skips.append(u)
                ul_skips.append(ul)
        u, ul = u_skips.pop(), ul_skips.pop()
        for scale in reversed(range(self.num_scales)):
            if scale < self.num_scales - 1:
                size = tfps_layers.spatial_size(u_skips[-1])
                u = getattr(self, f"u_upsample_{scale + 1}")(u, size=size)
                ul = getattr(self, f"ul_upsample_{scale + 1}")(ul, size=size)
            for u_block, ul_block in self.resnet_pairs(scale, down=True):
                u = u_block(u, aux=u_skips.pop(), training=training, rows=rows)
                ul_aux = tf.concat([u, ul_skips.pop()], axis=-1)
                ul = ul_block(ul, aux=ul_aux, training=training, rows=rows)
        return u, ul

    def model_config(self):
        """The constructor arguments as plain JSON-able values (written next to checkpoints)."""
        return {
            "arch": "pixelcnn",
            "image_shape": list(self.image_shape),
            "num_categories": self.num_categories,
            "num_resnets": self.num_resnets,
            "filters": self.filters,
            "dropout_rate": self.dropout_rate,
            "head_hidden": self.head_hidden,
            "num_scales": self.num_scales,
        }


def validate_images(x, image_shape, num_categories, name="x"):
    """Checks that `x` is an integer `[B, H, W, C]` batch with values in [0, K)
    (`tfps.sampling.events.validate_events`). Raises ValueError naming the problem; returns
    int32."""
    return events.validate_events(x, image_shape, num_categories, name)


def bits_per_dim(logits, x):
    """Negative log-likelihood in bits per dimension, per example: -log2 P(x) / d
    (`tfps.sampling.protocol.log_prob`). -> `[B]`."""
    d = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
    return -protocol.log_prob(logits, x) / (d * math.log(2.0))


def full_model_config(config):
    """A `model_config()` dict with the arguments older configs left out filled in."""
    return {**CONFIG_DEFAULTS, **config}
