"""Keras layers of the tfps PixelCNN: shifted convolutions, gated resnets, the channel head.

Everything here preserves the raster-then-channel ordering of [1, Appendix A.1]: the output for
variable x[h, w, c] may depend on all rows above h, the columns left of w in row h, and the
channels < c at (h, w); nothing else.

Spatial causality comes from *shifted* convolutions [2]: the input is padded on the top (and
left) and convolved with VALID padding, so the receptive field never reaches below or to the right
of the output. Channel causality at a location comes from a masked MADE-style head [4]
(`ChannelAutoregressiveHead`, as in the channel-wise masks of [3]): its masks are constants built
once in `build`. The forecasting heads built on these layers live in `tfps.models.heads`.

Shapes: images are `[batch, height, width, channels]`; logits are
`[batch, height, width, channels, categories]`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
     PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. In ICLR, 2017.

[3]: Aaron van den Oord, Nal Kalchbrenner, Koray Kavukcuoglu. Pixel Recurrent Neural Networks.
     In ICML, 2016.

[4]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder for
     Distribution Estimation. In ICML, 2015.
"""

import keras
import numpy as np
import tensorflow as tf

PACKAGE = "tfps"


def concat_elu(x):
    """concat_elu(x) = elu([x, -x]) along the last axis [2]: doubles the channels."""
    return tf.nn.elu(tf.concat([x, -x], axis=-1))


def down_shift(x, rows=None):
    """Shift a `[B, H, W, F]` map one row down, filling the top row with zeros.

    `rows`: a row band (`tfps.sampling.incremental`): x holds only the band's rows, and the row
    above the band comes from the band's cache.
    """
    if rows is not None:
        return rows.above(x, 1)[:, :-1]
    return tf.pad(x[:, :-1], [[0, 0], [1, 0], [0, 0], [0, 0]])


def right_shift(x):
    """Shift a `[B, H, W, F]` map one column right, filling the left column with zeros."""
    return tf.pad(x[:, :, :-1], [[0, 0], [0, 0], [1, 0], [0, 0]])


def spatial_size(x):
    """`(H, W)` of a `[B, H, W, F]` map: Python ints where the shape is static (so that slices
    keep static shapes), else a tensor."""
    if x.shape[1:3].is_fully_defined():
        return tuple(x.shape[1:3])
    return tf.shape(x)[1:3]


@keras.saving.register_keras_serializable(package=PACKAGE)
class ShiftedConv2D(keras.layers.Layer):
    """A convolution whose output at (i, j) only sees rows <= i (and, if `right`, cols <= j).

    `down` ([2]'s `down_shifted_conv2d`): a `[kh, kw]` kernel, kw odd, with the input padded
    kh - 1 rows on top and (kw - 1) / 2 columns on each side: output (i, j) sees rows
    i - kh + 1 .. i and columns j - (kw-1)/2 .. j + (kw-1)/2.
    `down_right` (`down_right_shifted_conv2d`): padded kh - 1 rows on top and kw - 1 columns on the
    left: output (i, j) sees rows i - kh + 1 .. i and columns j - kw + 1 .. j.
    Combined with one `down_shift` / `right_shift` of the stream input these give strictly causal
    features (the current pixel is excluded).

    `strides=2` halves the resolution for the multi-scale PixelCNN (the downsampling of [2]):
    output (a, b) sees input rows 2a - kh + 1 .. 2a (and columns up to 2b + (kw-1)/2 for `down`,
    up to 2b for `down_right`), i.e. what input (2a, 2b) sees, so causality is kept.

    Call: `layer(x, rows=None)`. With a row band `rows` (`tfps.sampling.incremental`) x holds only
    the band's rows (from an even row for `strides=2`), the kh - 1 rows above them come from the
    band's cache, and the output holds only the band's rows at the output resolution.
    """

    def __init__(self, filters, kernel_size, shift="down", strides=1, **kwargs):
        super().__init__(**kwargs)
        if shift not in ("down", "down_right"):
            raise ValueError(f"shift must be 'down' or 'down_right', got {shift!r}")
        kh, kw = kernel_size
        if shift == "down" and kw % 2 != 1:
            raise ValueError(f"a down-shifted kernel needs an odd width, got {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = (int(kh), int(kw))
        self.shift = shift
        self.strides = int(strides)
        if shift == "down":
            self._padding = [[0, 0], [kh - 1, 0], [(kw - 1) // 2, (kw - 1) // 2], [0, 0]]
        else:
            self._padding = [[0, 0], [kh - 1, 0], [kw - 1, 0], [0, 0]]
        self.conv = keras.layers.Conv2D(
            self.filters, self.kernel_size, strides=self.strides, padding="valid"
        )

    def build(self, input_shape):
        self.conv.build(self._padded_shape(input_shape))

    def _padded_shape(self, input_shape):
        b, h, w, f = input_shape
        kh, kw = self.kernel_size
        return (b, None if h is None else h + kh - 1, None if w is None else w + kw - 1, f)

    def call(self, x, rows=None):
        if rows is None:
            return self.conv(tf.pad(x, self._padding))
        return self.conv(tf.pad(rows.above(x, self.kernel_size[0] - 1), self._column_padding))

    @property
    def _column_padding(self):
        return [[0, 0], [0, 0]] + self._padding[2:]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "shift": self.shift,
            "strides": self.strides,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ShiftedConv2DTranspose(keras.layers.Layer):
    """Causal 2x upsampling ([2]'s `down_shifted_deconv2d` / `down_right_shifted_deconv2d`).

    A stride-2 transposed convolution with a `[2, 3]` (`down`) or `[2, 2]` (`down_right`) kernel,
    cropped to the `size` of the stream it feeds. Low-resolution (a, b) reaches only
    high-resolution pixels (i, j) with 2a <= i, 2b <= j, which see all that (a, b) saw, so the
    upsampled stream stays causal (docs/proofs.md, "Causal upsampling").

    Call: `layer(x, size=(H, W))` with x `[B, h, w, F]` and size `(H, W)`, H <= 2h, W <= 2w.
    """

    def __init__(self, filters, shift="down", **kwargs):
        super().__init__(**kwargs)
        if shift not in ("down", "down_right"):
            raise ValueError(f"shift must be 'down' or 'down_right', got {shift!r}")
        self.filters = int(filters)
        self.shift = shift
        self.kernel_size = (2, 3) if shift == "down" else (2, 2)
        self._first_column = 1 if shift == "down" else 0
        self.deconv = keras.layers.Conv2DTranspose(
            self.filters, self.kernel_size, strides=2, padding="valid"
        )

    def build(self, input_shape):
        self.deconv.build(input_shape)

    def call(self, x, size):
        y = self.deconv(x)
        return y[:, : size[0], self._first_column : self._first_column + size[1]]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "shift": self.shift}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GatedResnet(keras.layers.Layer):
    """The gated residual block of PixelCNN++ [2] (eq. 2 of its code).

        c1 = conv(concat_elu(x)) [+ nin(concat_elu(a))]
        c2 = conv(dropout(concat_elu(c1)))          (2F filters)
        y  = x + c2[:F] * sigmoid(c2[F:])

    `conv` is a `ShiftedConv2D` of the given `shift` (down: [2, 3], down_right: [2, 2]), so the
    block keeps the causal structure of its stream; `a` is the auxiliary stream (the up stream
    feeding the up-left stream), combined with a 1x1 "network in network" convolution.
    """

    def __init__(self, filters, shift="down", dropout_rate=0.5, use_aux=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.shift = shift
        self.dropout_rate = float(dropout_rate)
        self.use_aux = bool(use_aux)
        kernel = (2, 3) if shift == "down" else (2, 2)
        self.conv_in = ShiftedConv2D(self.filters, kernel, shift)
        self.conv_out = ShiftedConv2D(2 * self.filters, kernel, shift)
        self.nin_aux = keras.layers.Conv2D(self.filters, 1) if self.use_aux else None
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def build(self, x_shape, aux_shape=None):
        """`aux_shape`: the auxiliary input's shape (default: that of x)."""
        doubled = tuple(x_shape[:-1]) + (2 * self.filters,)
        self.conv_in.build(doubled)
        self.conv_out.build(doubled)
        if self.use_aux:
            aux_channels = self.filters if aux_shape is None else aux_shape[-1]
            self.nin_aux.build(tuple(x_shape[:-1]) + (2 * aux_channels,))

    def call(self, x, aux=None, training=False, rows=None):
        """`rows`: a row band (`tfps.sampling.incremental`) for the block's convolutions."""
        c1 = self.conv_in(concat_elu(x), rows=rows)
        if self.use_aux:
            if aux is None:
                raise ValueError(
                    "this GatedResnet was built with use_aux=True but got no aux input"
                )
            c1 = c1 + self.nin_aux(concat_elu(aux))
        c1 = self.dropout(concat_elu(c1), training=training)
        c2 = self.conv_out(c1, rows=rows)
        a, b = tf.split(c2, 2, axis=-1)
        return x + a * tf.sigmoid(b)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "shift": self.shift,
            "dropout_rate": self.dropout_rate,
            "use_aux": self.use_aux,
        }


def channel_masks(channels, categories, hidden_per_channel):
    """The constant masks of `ChannelAutoregressiveHead`.

    Returns `(input_mask [C*K, C*Fh], output_mask [C*Fh, C*K])`, float32 numpy arrays: one-hot
    input unit (c', k) may feed hidden group c only if c' < c (strict), and hidden group c feeds
    only the logits of channel c. Hence logits[c] depend on x[<c] at the same pixel, never on x[c:].
    """
    c_in = np.repeat(np.arange(channels), categories)
    c_hidden = np.repeat(np.arange(channels), hidden_per_channel)
    input_mask = (c_in[:, None] < c_hidden[None, :]).astype(np.float32)
    output_mask = (c_hidden[:, None] == c_in[None, :]).astype(np.float32)
    return input_mask, output_mask


def _per_pixel(x, w):
    """x `[B, H, W, F]` @ w `[F, G]`. A map one row high (a row band) takes a 2-D product:
    oneDNN's broadcasting batch matmul has corrupted memory on such maps."""
    if x.shape[1] != 1:
        return tf.matmul(x, w)
    return tf.reshape(
        tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), w),
        tf.concat([tf.shape(x)[:-1], tf.shape(w)[1:]], 0),
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelAutoregressiveHead(keras.layers.Layer):
    """Maps the causal representation h and the current pixel's earlier channels to logits.

        hidden_c = elu(A_c h[i,j] + (M_in * W)_c onehot(x[i,j,<c]))
        logits_c = (M_out * V)_c hidden_c

    for each channel c, where h[i, j] depends only on pixels strictly before (i, j) in raster
    order. The masks (`channel_masks`) make logits[i, j, c] depend on x[i, j, <c] only, so the
    full model is autoregressive in raster-then-channel order.

    Inputs: h `[B, H, W, F]`, x_onehot `[B, H, W, C, K]`. Output: logits `[B, H, W, C, K]`.
    """

    def __init__(self, channels, categories, hidden_per_channel, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.categories = int(categories)
        self.hidden_per_channel = int(hidden_per_channel)
        in_mask, out_mask = channel_masks(self.channels, self.categories, self.hidden_per_channel)
        self._input_mask = tf.constant(in_mask, self.compute_dtype)
        self._output_mask = tf.constant(out_mask, self.compute_dtype)

    def build(self, h_shape, x_onehot_shape=None):
        ck = self.channels * self.categories
        ch = self.channels * self.hidden_per_channel
        self.w_h = self.add_weight(
            name="w_h", shape=(h_shape[-1], ch), initializer="glorot_uniform"
        )
        self.w_x = self.add_weight(name="w_x", shape=(ck, ch), initializer="glorot_uniform")
        self.b_hidden = self.add_weight(name="b_hidden", shape=(ch,), initializer="zeros")
        self.w_out = self.add_weight(name="w_out", shape=(ch, ck), initializer="glorot_uniform")
        self.b_out = self.add_weight(name="b_out", shape=(ck,), initializer="zeros")

    def call(self, h, x_onehot):
        ck = self.channels * self.categories
        x_flat = tf.reshape(x_onehot, tf.concat([tf.shape(x_onehot)[:-2], [ck]], axis=0))
        hidden = tf.nn.elu(
            _per_pixel(h, self.w_h)
            + _per_pixel(x_flat, self.w_x * self._input_mask)
            + self.b_hidden
        )
        logits = _per_pixel(hidden, self.w_out * self._output_mask) + self.b_out
        return tf.reshape(
            logits, tf.concat([tf.shape(h)[:-1], [self.channels, self.categories]], axis=0)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "categories": self.categories,
            "hidden_per_channel": self.hidden_per_channel,
        }
