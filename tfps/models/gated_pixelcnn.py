"""Gated PixelCNN [1]: vertical and horizontal stacks without the blind spot, gated activations.

A masked 3x3 PixelCNN misses the pixels up and to the right of the current one (the blind spot
[1, sec. 2.2; 3, slide "PixelCNN"]). Gated PixelCNN combines two stacks:

  * the vertical stack v sees every pixel in the rows above (a `[k//2 + 1, k]` convolution over
    rows <= its own, after one row shift at the input, so rows < i at row i);
  * the horizontal stack s sees the pixels to the left in the current row (`[1, k//2 + 1]`
    convolutions over columns <= its own, after one column shift at the input), and takes v in
    through a 1x1 convolution at every layer.

Both use the gated activation [1, eq. 2]

    y = tanh(W_f * a) . sigmoid(W_g * a)

and the horizontal stack is residual [1, Figure 2]:

    v_pre = Conv_v(v)                            (2F channels)
    v'    = tanh(v_pre[:F]) . sigmoid(v_pre[F:])
    s_pre = Conv_s(s) + Conv1x1(v_pre)           (2F channels)
    s'    = s + Conv1x1(tanh(s_pre[:F]) . sigmoid(s_pre[F:]))

The row and column shifts are done by padding (the shifted convolutions of `tfps.models.layers`, as
in PixelCNN++ [2]) rather than masks; since v at row i already sees rows < i only, it feeds s at the
same pixel without a further shift. So s at (i, j) sees exactly the pixels before (i, j) in raster
order within its receptive field, h = elu(s) is the representation shared with the learned
forecasting heads, and `tfps.models.layers.ChannelAutoregressiveHead` makes the channels of a pixel
autoregressive (logits of channel c see h and x[i, j, <c]), the order of `tfps.models.pixelcnn`.

#### References

[1]: Aaron van den Oord, Nal Kalchbrenner, Oriol Vinyals, Lasse Espeholt, Alex Graves, Koray
     Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders. In NeurIPS, 2016.

[2]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
     PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. In ICLR, 2017.

[3]: CS294-158 Deep Unsupervised Learning, lecture 2: Autoregressive Models. UC Berkeley, 2020.
"""

import keras
import tensorflow as tf

from tfps.models import arm_base
from tfps.models import layers as tfps_layers

ARCH = "gated_pixelcnn"
# Constructor option -> generic model field of the run config (tfps.train.config).
RUN_CONFIG_FIELDS = {
    "filters": "filters",
    "num_layers": "num_layers",
    "kernel_size": "kernel_size",
    "dropout_rate": "dropout_rate",
    "head_hidden": "head_hidden",
}


def gate(a):
    """tanh(a[:F]) * sigmoid(a[F:]) over the last axis of 2F channels [1, eq. 2]."""
    f, g = tf.split(a, 2, axis=-1)
    return tf.tanh(f) * tf.sigmoid(g)


def shift(x, axis):
    """`[B, H, W, F]` shifted one step down (axis 1) or right (axis 2), zeros coming in.

    `tfps.models.layers.down_shift` / `right_shift` by concatenation instead of padding: with
    padding, TF 2.21's grappler remapper (oneDNN fusions, CPU) crashes on this network's gradient
    graph.
    """
    zeros = tf.zeros_like(tf.gather(x, [0], axis=axis))
    body = x[:, :-1] if axis == 1 else x[:, :, :-1]
    return tf.concat([zeros, body], axis=axis)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class GatedBlock(keras.layers.Layer):
    """One gated layer of both stacks [1, Figure 2] (equations in the module docstring).

    Call: `v, s = block(v, s)`, both `[B, H, W, F]`. If v at (i, j) sees rows < i and s at (i, j)
    sees pixels before (i, j), the outputs do too.

    #### References

    [1]: Aaron van den Oord et al. Conditional Image Generation with PixelCNN Decoders. In
         NeurIPS, 2016.
    """

    def __init__(self, filters, kernel_size=3, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = arm_base.check_int("filters", filters)
        self.kernel_size = arm_base.check_int("kernel_size", kernel_size)
        self.dropout_rate = arm_base.check_rate("dropout_rate", dropout_rate)
        k, f = self.kernel_size, self.filters
        self.vertical = tfps_layers.ShiftedConv2D(2 * f, (k // 2 + 1, k), "down", name="vertical")
        self.horizontal = tfps_layers.ShiftedConv2D(
            2 * f, (1, k // 2 + 1), "down_right", name="horizontal"
        )
        self.vertical_to_horizontal = keras.layers.Conv2D(2 * f, 1, name="vertical_to_horizontal")
        self.residual = keras.layers.Conv2D(f, 1, name="residual")
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def build(self, v_shape, s_shape=None):
        wide = tuple(v_shape[:-1]) + (2 * self.filters,)
        self.vertical.build(v_shape)
        self.horizontal.build(v_shape)
        self.vertical_to_horizontal.build(wide)
        self.residual.build(v_shape)

    def call(self, v, s, training=False):
        v_pre = self.vertical(v)
        s_pre = self.horizontal(s) + self.vertical_to_horizontal(v_pre)
        s_out = self.dropout(gate(s_pre), training=training)
        return gate(v_pre), s + self.residual(s_out)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dropout_rate": self.dropout_rate,
        }


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class GatedPixelCNN(arm_base.ARMBase):
    """Categorical Gated PixelCNN ARM [1] (see the module docstring for the architecture).

    Args:
      event_shape: `(H, W, C)` of the image.
      num_categories: K >= 2.
      filters: channels F of both stacks ([1]: 128 on CIFAR-10 ... 384 on ImageNet).
      num_layers: gated layers after the input layer ([1]: 15 or 20).
      kernel_size: k, odd >= 3: the vertical stack uses `[k//2 + 1, k]`, the horizontal one
        `[1, k//2 + 1]` kernels ([1]: 3 after a 7 at the input; here one k for all).
      dropout_rate: dropout inside the horizontal stack's residual branch in training.
      head_hidden: hidden units per channel of the channel head (default: filters).

    Call: `logits, h = model(x)`, x int `[B, H, W, C]` -> logits `[B, H, W, C, K]`,
    h `[B, H, W, filters]`.

    #### References

    [1]: Aaron van den Oord et al. Conditional Image Generation with PixelCNN Decoders. In
         NeurIPS, 2016.
    """

    ARCH = ARCH
    RANKS = (3,)

    def __init__(
        self,
        event_shape,
        num_categories,
        filters=64,
        num_layers=5,
        kernel_size=3,
        dropout_rate=0.0,
        head_hidden=None,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, **kwargs)
        self.filters = arm_base.check_int("filters", filters)
        self.num_layers = arm_base.check_int("num_layers", num_layers, minimum=0)
        self.kernel_size = arm_base.check_int("kernel_size", kernel_size, minimum=3)
        if self.kernel_size % 2 != 1:
            raise ValueError(
                f"kernel_size must be odd (a centred vertical kernel), got {kernel_size}"
            )
        self.dropout_rate = arm_base.check_rate("dropout_rate", dropout_rate)
        self.head_hidden = arm_base.check_int("head_hidden", head_hidden or self.filters)
        k, f = self.kernel_size, self.filters
        self.vertical_in = tfps_layers.ShiftedConv2D(f, (k // 2 + 1, k), "down", name="vertical_in")
        self.horizontal_in = tfps_layers.ShiftedConv2D(
            f, (1, k // 2 + 1), "down_right", name="horizontal_in"
        )
        self.vertical_to_horizontal_in = keras.layers.Conv2D(f, 1, name="vertical_to_horizontal_in")
        for i in range(self.num_layers):  # direct attributes: tracked by tf.train.Checkpoint
            block = GatedBlock(f, k, self.dropout_rate, name=f"gated_{i}")
            setattr(self, f"gated_{i}", block)
        self.head = tfps_layers.ChannelAutoregressiveHead(
            self.event_shape[2], self.num_categories, self.head_hidden, name="channel_head"
        )
        self.build_weights()

    @property
    def image_shape(self):
        """`(H, W, C)`, the name `tfps.sampling.predictive.sampler_for_model` and
        `tfps.sampling.forecasters` read."""
        return self.event_shape

    @property
    def representation_channels(self):
        return self.filters

    def call(self, x, training=False):
        return self.stacks(self.one_hot(x), training=training)

    def stacks(self, x_onehot, training=False, bias=None):
        """`(logits, h)` of a one-hot image `[B, H, W, C, K]` in raster order; `bias` `[F]`, if
        given, is added to both stacks after the input layer (the same at every pixel: the
        order stays causal), e.g. a conditioning embedding."""
        shape = tf.shape(x_onehot)
        flat = tf.reshape(x_onehot, tf.concat([shape[:3], [-1]], axis=0))
        # A constant ones channel lets the network tell zero padding from zero inputs [2].
        flat = tf.concat([flat, tf.ones_like(flat[..., :1])], axis=-1)
        v = shift(self.vertical_in(flat), axis=1)  # rows < i
        s = shift(self.horizontal_in(flat), axis=2)  # (i, < j)
        if bias is not None:
            v, s = v + bias, s + bias
        s = s + self.vertical_to_horizontal_in(v)  # pixels before (i, j)
        for i in range(self.num_layers):
            v, s = getattr(self, f"gated_{i}")(v, s, training=training)
        h = tf.nn.elu(s)
        return tf.cast(self.head(h, x_onehot), tf.float32), h

    def right_reach(self):
        """R: the logits at (i, j) see pixels of the rows above up to column j + R, no further
        (each `[k//2 + 1, k]` layer of the vertical stack reaches k//2 columns to the right)."""
        return (self.num_layers + 1) * (self.kernel_size // 2)

    def options(self):
        return {
            "filters": self.filters,
            "num_layers": self.num_layers,
            "kernel_size": self.kernel_size,
            "dropout_rate": self.dropout_rate,
            "head_hidden": self.head_hidden,
        }
