"""Learned forecasting heads: the modules P_F^(t) of learned forecasting [1, sec. 2.4].

`ForecastHeads` read the ARM's shared representation h through a triangular convolution
(`TriangularConv2D`, [1, Appendix A.2]); `UnsharedForecastHeads` are the ablation without
representation sharing [1, sec. 4.3, Table 3], on x and the reparametrization noise. Both give
logits `[batch, height, width, T, channels, categories]`: module t's slot r at pixel a forecasts
the variable a * C + 1 + r + t (raster-then-channel order, C channels). The logits are float32
under a mixed-precision policy too, as the ARM's are; the heads compute in the policy's dtype.

The layers are registered under the package of `tfps.models.layers` (`tfps>ForecastHeads`, ...), so
saved configs deserialize whichever module defines them.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

import keras
import numpy as np
import tensorflow as tf

from tfps.models import layers as tfps_layers
from tfps.sampling import events, protocol


def triangular_mask(kernel_size=3):
    """The constant `[k, k, 1, 1]` mask of `TriangularConv2D`: taps at or before the centre in
    raster order (all rows above; the centre row up to and including the centre)."""
    k = int(kernel_size)
    centre = k // 2
    rows, cols = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    keep = (rows < centre) | ((rows == centre) & (cols <= centre))
    return keep.astype(np.float32)[:, :, None, None]


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class TriangularConv2D(keras.layers.Layer):
    """A k x k convolution masked to the taps at or before the centre in raster order.

        y[p] = b + sum_{q in window(p), q <= p} W[q - p] x[q]          (`triangular_mask`)

    On a representation whose pixel p depends only on pixels < p (the ARM's h, [1, sec. 2.2]), the
    output at p still depends only on pixels < p: on the variables, the map is *strictly*
    triangular [1, Appendix A.2], while on the feature map it keeps the centre tap so that the
    freshest valid features, those of p itself, are used.
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
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, input_shape[-1], self.filters), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def _masked(self, dtype):
        """`(kernel * mask, bias)` in `dtype`, the input's: under a mixed-precision policy the
        variables stay float32 while the input is float16 / bfloat16."""
        kernel = tf.cast(self.kernel, dtype) * tf.cast(self._mask, dtype)
        return kernel, tf.cast(self.bias, dtype)

    def call(self, x):
        kernel, bias = self._masked(x.dtype)
        return tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias

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
        rows = (pixels // width)[:, None] + taps  # [B, k] in padded rows
        cols = (pixels % width)[:, None] + taps  # [B, k] in padded columns
        window = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, k, W + 2 half, F_in]
        window = tf.gather(window, cols, axis=2, batch_dims=1)  # [B, k, k, F_in]
        kernel, bias = self._masked(x.dtype)
        return tf.einsum("bijf,ijfo->bo", window, kernel) + bias

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


def _forecast_logits_shape(logits, steps, channels, categories):
    """`[B, H, W, T * C * K] -> [B, H, W, T, C, K]`, float32 under a mixed-precision policy too
    (as the ARM's logits: the forecasting KL and the sampler compare the two)."""
    logits = tf.cast(logits, tf.float32)
    return tf.reshape(logits, tf.concat([tf.shape(logits)[:3], [steps, channels, categories]], 0))


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class ForecastHeads(keras.layers.Layer):
    """T learned forecasting modules on the ARM's shared representation h [1, sec. 2.4;
    Appendix A.2]: a triangular 3x3 convolution, elu, and a 1x1 convolution to T * C * K logits.

        f = elu(TriangularConv2D(h)),   logits[p, t, r, :] = (V f[p] + b)[t, r, :]

    What the output at pixel a forecasts (positions i are raster-then-channel, d = H * W * C):
    module t's slot r gives the logits mu~_{i,t} of P_F^(t)(x_{i+t} | h_<i) for the valid-prefix
    length i = a * C + 1 + r, i.e. for the variable x_{a*C + 1 + r + t}. Equivalently, the
    forecast for x_{n+t} made when the first n variables are valid (n >= 1) is read at

        a = (n - 1) // C  (the pixel of the last valid variable),  r = (n - 1) % C.

    Nothing unknown leaks in: the forecast read at a depends on x at positions < a * C <= n - 1
    only, i.e. it conditions on h_<n [1, eq. 9]; the argument, and why the sampler's h from the
    previous ARM call is valid there, is in docs/proofs.md ("Forecasting heads see only the valid
    prefix").

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
        per ARM call, `tfps.sampling.forecasters.learned_forecaster`, at 1 / (H W) of the cost of
        `call`)."""
        features = tf.nn.elu(self.triangular.at_pixels(h, pixels))  # [B, filters]
        kernel = tf.cast(self.out.kernel[0, 0], features.dtype)
        logits = tf.matmul(features, kernel) + tf.cast(self.out.bias, features.dtype)
        logits = tf.cast(logits, tf.float32)  # as `call`'s
        return tf.reshape(logits, [-1, self.steps, self.channels, self.categories])

    def get_config(self):
        return {
            **super().get_config(),
            "steps": self.steps,
            "channels": self.channels,
            "categories": self.categories,
            "filters": self.filters,
        }


def noise_window_indices(image_shape, steps):
    """int32 `[H * W, C + T - 1]`: row a lists the variables a*C + 1 .. a*C + C + T - 1, the ones
    pixel a forecasts (`ForecastHeads`); indices past the last variable point at d (padding)."""
    h, w, c = (int(s) for s in image_shape)
    d = h * w * c
    anchors = np.arange(h * w)[:, None] * c + 1 + np.arange(c + int(steps) - 1)[None, :]
    return np.minimum(anchors, d).astype(np.int32)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class UnsharedForecastHeads(keras.layers.Layer):
    """Forecasting modules without representation sharing [1, sec. 4.3, Table 3]: they
    see x_<i (one-hot) and the reparametrization noise eps instead of the ARM's h.

        z  = elu(small PixelCNN up-left stack on onehot(x))       z[q] depends on pixels < q
        f  = elu(TriangularConv2D(z) + A . eps[window(a)])
        logits[a, t, r, :] = (V f[a] + b)[t, r, :]

    The up-left stack is the ARM's own (down_shift(conv[1,3]) + right_shift(conv[2,1]),
    `num_resnets` down-right gated resnets), so z has h's causal structure and the outputs mean
    what `ForecastHeads`' do: slot r of module t at pixel a forecasts x_{a*C + 1 + r + t} from x at
    positions < a * C. window(a) is the noise of exactly those variables, a*C + 1 .. a*C + C + T - 1
    (`noise_window_indices`; zeros past d): all noise is known before sampling starts, so using it
    leaks nothing. In training eps is posterior noise
    (`tfps.sampling.noise.posterior_gumbel_noise`), while sampling passes the sample's noise.

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
        self.init_up = tfps_layers.ShiftedConv2D(f, (1, 3), "down", name="init_up")
        self.init_left = tfps_layers.ShiftedConv2D(f, (2, 1), "down_right", name="init_left")
        for i in range(self.num_resnets):  # direct attributes: tf.train.Checkpoint tracks these
            setattr(
                self,
                f"resnet_{i}",
                tfps_layers.GatedResnet(f, "down_right", 0.0, name=f"resnet_{i}"),
            )
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
        z = tfps_layers.down_shift(self.init_up(flat)) + tfps_layers.right_shift(
            self.init_left(flat)
        )
        for i in range(self.num_resnets):
            z = getattr(self, f"resnet_{i}")(z)
        z = tf.nn.elu(z)
        batch = tf.shape(noise)[0]
        padded = tf.concat(
            [
                tf.reshape(tf.cast(noise, tf.float32), [batch, h * w * c, k]),
                tf.zeros([batch, 1, k]),
            ],
            axis=1,
        )
        window = tf.reshape(
            tf.gather(padded, self._window, axis=1), [batch, h, w, (c + self.steps - 1) * k]
        )
        f = tf.nn.elu(self.triangular(z) + self.noise_in(window))
        return _forecast_logits_shape(self.out(f), self.steps, c, k)

    def get_config(self):
        return {
            **super().get_config(),
            "steps": self.steps,
            "image_shape": self.image_shape,
            "categories": self.categories,
            "filters": self.filters,
            "num_resnets": self.num_resnets,
        }


def make_heads(
    image_shape, num_categories, steps, filters, shared=True, representation_channels=None
):
    """Built forecasting heads for an ARM on `image_shape` `(H, W, C)` with K categories.

    `shared`: `tfps.models.heads.ForecastHeads` on the ARM's h of `representation_channels` channels
    (method `learned`); otherwise `tfps.models.heads.UnsharedForecastHeads` on x and the noise
    (method `learned_unshared`). `filters`: the heads' width ([1, Table 4]: the ARM's). T must be in
    [1, d).
    """
    h, w, c = (int(s) for s in image_shape)
    if not 1 <= int(steps) < h * w * c:
        raise ValueError(f"forecast steps T must be in [1, d) = [1, {h * w * c}), got {steps}")
    if shared:
        if representation_channels is None:
            raise ValueError("shared forecasting heads need the ARM's representation_channels")
        heads = ForecastHeads(steps, c, num_categories, filters, name="forecast_heads")
        heads.build((None, h, w, int(representation_channels)))
    else:
        heads = UnsharedForecastHeads(
            steps, (h, w, c), num_categories, filters, name="forecast_heads"
        )
        heads.build((None, h, w, c), (None, h, w, c, num_categories))
    return heads


def heads_for_model(model, steps, filters=None, shared=True):
    """`make_heads` for an ARM of the protocol (`tfps.models.arms`) in its canonical image layout
    (`tfps.sampling.events`; a sequence is one row); width: the ARM's representation's by
    default."""
    if shared and model.representation_channels is None:
        raise ValueError(
            f"{type(model).__name__} returns no representation h, so it cannot have shared "
            "forecasting heads; train unshared ones (forecast.shared=false) or none"
        )
    return make_heads(
        events.canonical_shape(protocol.event_shape_of(model)),
        model.num_categories,
        steps,
        filters or model.representation_channels,
        shared,
        model.representation_channels,
    )
