"""Keras layers of the tfps PixelCNN: shifted convolutions, gated resnets, the channel head.

Everything here preserves the raster-then-channel ordering of seed 000, Appendix A.1: the output
for variable x[h, w, c] may depend on all rows above h, the columns left of w in row h, and the
channels < c at (h, w); nothing else.

Spatial causality comes from *shifted* convolutions (PixelCNN++, Salimans et al. 2017): the input
is padded on the top (and left) and convolved with VALID padding, so the receptive field never
reaches below or to the right of the output. Channel causality at a location comes from a masked
MADE-style head (`ChannelAutoregressiveHead`): its masks are constants built once in `build`.

Shapes: images are `[batch, height, width, channels]`; logits are
`[batch, height, width, channels, categories]`.
"""
import numpy as np
import tensorflow as tf
import keras

PACKAGE = "tfps"


def concat_elu(x):
    """concat_elu(x) = elu([x, -x]) along the last axis (PixelCNN++): doubles the channels."""
    return tf.nn.elu(tf.concat([x, -x], axis=-1))


def down_shift(x):
    """Shift a `[B, H, W, F]` map one row down, filling the top row with zeros."""
    return tf.pad(x[:, :-1], [[0, 0], [1, 0], [0, 0], [0, 0]])


def right_shift(x):
    """Shift a `[B, H, W, F]` map one column right, filling the left column with zeros."""
    return tf.pad(x[:, :, :-1], [[0, 0], [0, 0], [1, 0], [0, 0]])


@keras.saving.register_keras_serializable(package=PACKAGE)
class ShiftedConv2D(keras.layers.Layer):
    """A convolution whose output at (i, j) only sees rows <= i (and, if `right`, cols <= j).

    `down` (PixelCNN++ `down_shifted_conv2d`): a `[kh, kw]` kernel, kw odd, with the input padded
    kh - 1 rows on top and (kw - 1) / 2 columns on each side: output (i, j) sees rows
    i - kh + 1 .. i and columns j - (kw-1)/2 .. j + (kw-1)/2.
    `down_right` (`down_right_shifted_conv2d`): padded kh - 1 rows on top and kw - 1 columns on the
    left: output (i, j) sees rows i - kh + 1 .. i and columns j - kw + 1 .. j.
    Combined with one `down_shift` / `right_shift` of the stream input these give strictly causal
    features (the current pixel is excluded).

    `strides=2` halves the resolution for the multi-scale PixelCNN (PixelCNN++ downsampling):
    output (a, b) sees input rows 2a - kh + 1 .. 2a (and columns up to 2b + (kw-1)/2 for `down`,
    up to 2b for `down_right`), i.e. what input (2a, 2b) sees, so causality is kept.
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
        self.conv = keras.layers.Conv2D(self.filters, self.kernel_size, strides=self.strides,
                                        padding="valid")

    def build(self, input_shape):
        self.conv.build(self._padded_shape(input_shape))

    def _padded_shape(self, input_shape):
        b, h, w, f = input_shape
        kh, kw = self.kernel_size
        return (b, None if h is None else h + kh - 1, None if w is None else w + kw - 1, f)

    def call(self, x):
        return self.conv(tf.pad(x, self._padding))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "shift": self.shift, "strides": self.strides}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ShiftedConv2DTranspose(keras.layers.Layer):
    """Causal 2x upsampling (PixelCNN++ `down_shifted_deconv2d` / `down_right_shifted_deconv2d`).

    A stride-2 transposed convolution with a `[2, 3]` (`down`) or `[2, 2]` (`down_right`) kernel,
    cropped to the `size` of the stream it feeds: low-resolution (a, b) reaches high-resolution
    rows 2a .. 2a + 1 and columns 2b - 1 .. 2b + 1 (`down`) or 2b .. 2b + 1 (`down_right`). A
    low-resolution feature made by a stride-2 `ShiftedConv2D` from the stream at (2a, 2b) sees only
    what that stream sees at (2a, 2b), which is a subset of what it sees at (i, j) whenever
    2a <= i and 2b <= j (raster order); for the `down` stream only rows matter. So the upsampled
    stream stays causal.

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
        self.deconv = keras.layers.Conv2DTranspose(self.filters, self.kernel_size, strides=2,
                                                   padding="valid")

    def build(self, input_shape):
        self.deconv.build(input_shape)

    def call(self, x, size):
        y = self.deconv(x)
        return y[:, :size[0], self._first_column:self._first_column + size[1]]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "shift": self.shift}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GatedResnet(keras.layers.Layer):
    """PixelCNN++ gated residual block (Salimans et al. 2017, eq. 2 of the PixelCNN++ code).

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

    def call(self, x, aux=None, training=False):
        c1 = self.conv_in(concat_elu(x))
        if self.use_aux:
            if aux is None:
                raise ValueError("this GatedResnet was built with use_aux=True but got no aux input")
            c1 = c1 + self.nin_aux(concat_elu(aux))
        c1 = self.dropout(concat_elu(c1), training=training)
        c2 = self.conv_out(c1)
        a, b = tf.split(c2, 2, axis=-1)
        return x + a * tf.sigmoid(b)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "shift": self.shift,
                "dropout_rate": self.dropout_rate, "use_aux": self.use_aux}


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
        self._input_mask = tf.constant(in_mask)
        self._output_mask = tf.constant(out_mask)

    def build(self, h_shape, x_onehot_shape=None):
        ck = self.channels * self.categories
        ch = self.channels * self.hidden_per_channel
        self.w_h = self.add_weight(name="w_h", shape=(h_shape[-1], ch), initializer="glorot_uniform")
        self.w_x = self.add_weight(name="w_x", shape=(ck, ch), initializer="glorot_uniform")
        self.b_hidden = self.add_weight(name="b_hidden", shape=(ch,), initializer="zeros")
        self.w_out = self.add_weight(name="w_out", shape=(ch, ck), initializer="glorot_uniform")
        self.b_out = self.add_weight(name="b_out", shape=(ck,), initializer="zeros")

    def call(self, h, x_onehot):
        ck = self.channels * self.categories
        x_flat = tf.reshape(x_onehot, tf.concat([tf.shape(x_onehot)[:-2], [ck]], axis=0))
        hidden = tf.nn.elu(tf.matmul(h, self.w_h)
                           + tf.matmul(x_flat, self.w_x * self._input_mask) + self.b_hidden)
        logits = tf.matmul(hidden, self.w_out * self._output_mask) + self.b_out
        return tf.reshape(logits, tf.concat(
            [tf.shape(h)[:-1], [self.channels, self.categories]], axis=0))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "categories": self.categories, "hidden_per_channel": self.hidden_per_channel}


# ----------------------------------------------------------------------------- forecasting heads


def triangular_mask(kernel_size=3):
    """The constant `[k, k, 1, 1]` mask of `TriangularConv2D`: taps at or before the centre in
    raster order (all rows above; the centre row up to and including the centre)."""
    k = int(kernel_size)
    centre = k // 2
    rows, cols = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    keep = (rows < centre) | ((rows == centre) & (cols <= centre))
    return keep.astype(np.float32)[:, :, None, None]


@keras.saving.register_keras_serializable(package=PACKAGE)
class TriangularConv2D(keras.layers.Layer):
    """A k x k convolution masked to the taps at or before the centre in raster order.

        y[p] = b + sum_{q in window(p), q <= p} W[q - p] x[q]          (`triangular_mask`)

    On a representation whose pixel p depends only on pixels < p (the ARM's h, section 2.2), the
    output at p still depends only on pixels < p: on the variables, the map is *strictly*
    triangular (seed 000, Appendix A.2), while on the feature map it keeps the centre tap so that
    the freshest valid features, those of p itself, are used.
    Shapes: `[B, H, W, F_in] -> [B, H, W, filters]` (zero padding at the borders).
    """

    def __init__(self, filters, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 1 or int(kernel_size) % 2 != 1:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self._mask = tf.constant(triangular_mask(self.kernel_size))

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel", shape=(k, k, input_shape[-1], self.filters),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        return tf.nn.conv2d(x, self.kernel * self._mask, strides=1, padding="SAME") + self.bias

    def at_pixels(self, x, pixels):
        """`call(x)` at one pixel per example, from that pixel's k x k window alone.

        x `[B, H, W, F_in]`, pixels int32 `[B]` (raster index row * W + col) -> `[B, filters]`,
        equal to `call(x)[b, pixels[b] // W, pixels[b] % W]` up to float rounding. The sampler
        reads one pixel of the forecasting heads per ARM call; this costs 1 / (H W) of `call`.
        """
        k, half = self.kernel_size, self.kernel_size // 2
        padded = tf.pad(x, [[0, 0], [half, half], [half, half], [0, 0]])
        width = tf.shape(x)[2]
        taps = tf.range(k)[None, :]
        rows = (pixels // width)[:, None] + taps                     # [B, k] in padded rows
        cols = (pixels % width)[:, None] + taps                      # [B, k] in padded columns
        window = tf.gather(padded, rows, axis=1, batch_dims=1)       # [B, k, W + 2 half, F_in]
        window = tf.gather(window, cols, axis=2, batch_dims=1)       # [B, k, k, F_in]
        return tf.einsum("bijf,ijfo->bo", window, self.kernel * self._mask) + self.bias

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


def _forecast_logits_shape(logits, steps, channels, categories):
    """`[B, H, W, T * C * K] -> [B, H, W, T, C, K]`."""
    return tf.reshape(logits, tf.concat([tf.shape(logits)[:3], [steps, channels, categories]], 0))


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForecastHeads(keras.layers.Layer):
    """T learned forecasting modules on the ARM's shared representation h (seed 000, section 2.4,
    Appendix A.2): a triangular 3x3 convolution, elu, and a 1x1 convolution to T * C * K logits.

        f = elu(TriangularConv2D(h)),   logits[p, t, r, :] = (V f[p] + b)[t, r, :]

    What the output at pixel a forecasts (positions i are raster-then-channel, d = H * W * C):
    module t's slot r gives the logits mu~_{i,t} of P_F^(t)(x_{i+t} | h_<i) for the valid-prefix
    length i = a * C + 1 + r, i.e. for the variable x_{a*C + 1 + r + t}. Equivalently, the
    forecast for x_{n+t} made when the first n variables are valid (n >= 1) is read at

        a = (n - 1) // C  (the pixel of the last valid variable),  r = (n - 1) % C.

    Why nothing unknown leaks in: h[q] depends only on pixels < q (x at positions < q * C), and
    the triangular convolution at a only reads h at pixels q <= a, so the forecast depends on x at
    positions < a * C <= n - 1 only (and not even on x_{n-1}). The per-variable representation of
    x_j is h at j's pixel, so this is conditioning on h_<n, eq. 9. In the sampler, h comes from the
    previous ARM call, whose input was correct before its first wrong forecast at n - 1: h at
    pixels <= a is valid there too. (The paper's "h_<i" for C = 1.) With C > 1, slots r and r'
    of one pixel share their information; the heads do not see x at the anchor pixel's channels.

    Shapes: h `[B, H, W, F]` -> logits `[B, H, W, T, C, K]`.
    """
    method = "learned"
    shares_representation = True

    def __init__(self, steps, channels, categories, filters, **kwargs):
        super().__init__(**kwargs)
        if int(steps) < 1:
            raise ValueError(f"steps (T) must be >= 1, got {steps}")
        self.steps = int(steps)
        self.channels = int(channels)
        self.categories = int(categories)
        self.filters = int(filters)
        self.triangular = TriangularConv2D(self.filters, 3, name="triangular")
        self.out = keras.layers.Conv2D(self.steps * self.channels * self.categories, 1, name="out")

    def build(self, h_shape):
        self.triangular.build(h_shape)
        self.out.build(tuple(h_shape[:-1]) + (self.filters,))

    def call(self, h):
        logits = self.out(tf.nn.elu(self.triangular(h)))
        return _forecast_logits_shape(logits, self.steps, self.channels, self.categories)

    def at_pixels(self, h, pixels):
        """`call(h)` at one pixel per example: h `[B, H, W, F]`, pixels int32 `[B]` (raster
        index) -> `[B, T, C, K]`, from the pixel's 3x3 window of h alone (what the sampler reads
        per ARM call, `tfps.forecast.learned_forecaster`, at 1 / (H W) of the cost of `call`)."""
        features = tf.nn.elu(self.triangular.at_pixels(h, pixels))          # [B, filters]
        logits = tf.matmul(features, self.out.kernel[0, 0]) + self.out.bias
        return tf.reshape(logits, [-1, self.steps, self.channels, self.categories])

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "channels": self.channels,
                "categories": self.categories, "filters": self.filters}


def noise_window_indices(image_shape, steps):
    """int32 `[H * W, C + T - 1]`: row a lists the variables a*C + 1 .. a*C + C + T - 1, the ones
    pixel a forecasts (`ForecastHeads`); indices past the last variable point at d (padding)."""
    h, w, c = (int(s) for s in image_shape)
    d = h * w * c
    anchors = np.arange(h * w)[:, None] * c + 1 + np.arange(c + int(steps) - 1)[None, :]
    return np.minimum(anchors, d).astype(np.int32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnsharedForecastHeads(keras.layers.Layer):
    """Forecasting modules without representation sharing (seed 000, section 4.3, Table 3): they
    see x_<i (one-hot) and the reparametrization noise eps instead of the ARM's h.

        z  = elu(small PixelCNN up-left stack on onehot(x))       z[q] depends on pixels < q
        f  = elu(TriangularConv2D(z) + A . eps[window(a)])
        logits[a, t, r, :] = (V f[a] + b)[t, r, :]

    The up-left stack is the ARM's own (down_shift(conv[1,3]) + right_shift(conv[2,1]),
    `num_resnets` down-right gated resnets), so z has h's causal structure and the outputs mean
    what `ForecastHeads`' do: slot r of module t at pixel a forecasts x_{a*C + 1 + r + t} from x at
    positions < a * C. window(a) is the noise of exactly those variables, a*C + 1 .. a*C + C + T - 1
    (`noise_window_indices`; zeros past d): all noise is known before sampling starts, so using it
    leaks nothing. In training eps is posterior noise (`tfps.noise.posterior_gumbel_noise`), while
    sampling passes the sample's noise.

    Shapes: x int `[B, H, W, C]`, noise `[B, H, W, C, K]` -> logits `[B, H, W, T, C, K]`.
    """
    method = "learned_unshared"
    shares_representation = False

    def __init__(self, steps, image_shape, categories, filters, num_resnets=1, **kwargs):
        super().__init__(**kwargs)
        if int(steps) < 1:
            raise ValueError(f"steps (T) must be >= 1, got {steps}")
        self.steps = int(steps)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.channels = self.image_shape[2]
        self.categories = int(categories)
        self.filters = int(filters)
        self.num_resnets = int(num_resnets)
        f = self.filters
        self.init_up = ShiftedConv2D(f, (1, 3), "down", name="init_up")
        self.init_left = ShiftedConv2D(f, (2, 1), "down_right", name="init_left")
        for i in range(self.num_resnets):  # direct attributes: tf.train.Checkpoint tracks these
            setattr(self, f"resnet_{i}", GatedResnet(f, "down_right", 0.0, name=f"resnet_{i}"))
        self.triangular = TriangularConv2D(f, 3, name="triangular")
        self.noise_in = keras.layers.Dense(f, name="noise_in")
        self.out = keras.layers.Conv2D(self.steps * self.channels * self.categories, 1, name="out")
        self._window = tf.constant(noise_window_indices(self.image_shape, self.steps))

    def build(self, x_shape, noise_shape=None):
        b = x_shape[0]
        h, w, c = self.image_shape
        stream = (b, h, w, self.filters)
        x_in = (b, h, w, c * self.categories + 1)
        self.init_up.build(x_in)
        self.init_left.build(x_in)
        for i in range(self.num_resnets):
            getattr(self, f"resnet_{i}").build(stream)
        self.triangular.build(stream)
        self.noise_in.build((b, h, w, (c + self.steps - 1) * self.categories))
        self.out.build(stream)

    def call(self, x, noise):
        h, w, c = self.image_shape
        k = self.categories
        x_onehot = tf.one_hot(tf.cast(x, tf.int32), k, dtype=tf.float32)
        flat = tf.reshape(x_onehot, tf.concat([tf.shape(x)[:3], [c * k]], axis=0))
        flat = tf.concat([flat, tf.ones_like(flat[..., :1])], axis=-1)
        z = down_shift(self.init_up(flat)) + right_shift(self.init_left(flat))
        for i in range(self.num_resnets):
            z = getattr(self, f"resnet_{i}")(z)
        z = tf.nn.elu(z)
        batch = tf.shape(noise)[0]
        padded = tf.concat([tf.reshape(tf.cast(noise, tf.float32), [batch, h * w * c, k]),
                            tf.zeros([batch, 1, k])], axis=1)
        window = tf.reshape(tf.gather(padded, self._window, axis=1),
                            [batch, h, w, (c + self.steps - 1) * k])
        f = tf.nn.elu(self.triangular(z) + self.noise_in(window))
        return _forecast_logits_shape(self.out(f), self.steps, c, k)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "image_shape": self.image_shape,
                "categories": self.categories, "filters": self.filters,
                "num_resnets": self.num_resnets}
