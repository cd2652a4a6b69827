"""A causal Conv1D ARM over the flattened event [1, sec. 2.2.3, 2.3].

Dilated one-dimensional causal convolutions [1, Listing 2.1] on the one-hot sequence of the d
variables, in raster order. A causal convolution of option B sees the current and the k - 1
previous positions (times the dilation); option A excludes the current one. The first layer is of
option A, the rest of option B, so the output at position i sees x_<i only [1, Fig. 2.3]:

    a_1 = leaky_relu(CausalConvA_1(onehot(x)))
    a_l = leaky_relu(CausalConvB_l(a_{l-1})),   dilation g^(l-1), l = 2 .. L
    h = a_L,   logits = V h + b                                  (categorical, [1, eq. 2.8])

with a receptive field of k + (k - 1) (g + g^2 + ... + g^(L-1)) previous positions
(`receptive_field`). Unlike [1, Listing 2.3], whose last layer is a causal convolution to the K
outputs and whose input is the raw value, the input is one-hot (plus a constant ones channel that
tells padding from zeros) and the output a pointwise layer on h, so that h is a representation for
learned forecasting heads.

#### References

[1]: Jakub M. Tomczak. Deep Generative Modeling, chapter 2: Autoregressive Models. Springer, 2022.

[2]: Aaron van den Oord, Sander Dieleman, Heiga Zen, et al. WaveNet: A Generative Model for Raw
     Audio. arXiv:1609.03499, 2016.
"""

import keras
import tensorflow as tf

from tfps.models import arm_base
from tfps.models import layers as tfps_layers

ARCH = "conv1d"
# Constructor option -> generic model field of the run config (tfps.train.config).
RUN_CONFIG_FIELDS = {
    "filters": "filters",
    "num_layers": "num_layers",
    "kernel_size": "kernel_size",
    "dropout_rate": "dropout_rate",
}


def receptive_field(kernel_size, num_layers, dilation_growth):
    """How many previous positions the output at i sees (all of them within the sequence)."""
    k, g = int(kernel_size), int(dilation_growth)
    return k + sum((k - 1) * g**layer for layer in range(1, int(num_layers)))


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class CausalConv1D(keras.layers.Layer):
    """A causal 1D convolution [1, Listing 2.1]: padding on the left only.

    Option B (`exclude_current=False`): y[i] sees x[i - (k-1) r .. i] (r the dilation).
    Option A (`exclude_current=True`): y[i] sees x[i - (k-1) r - 1 .. i - 1], never x[i].
    Shapes: `[B, L, F_in] -> [B, L, filters]`.

    #### References

    [1]: Jakub M. Tomczak. Deep Generative Modeling, chapter 2. Springer, 2022.
    """

    def __init__(self, filters, kernel_size, dilation_rate=1, exclude_current=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = arm_base.check_int("filters", filters)
        self.kernel_size = arm_base.check_int("kernel_size", kernel_size)
        self.dilation_rate = arm_base.check_int("dilation_rate", dilation_rate)
        self.exclude_current = bool(exclude_current)
        self._left = (self.kernel_size - 1) * self.dilation_rate + int(self.exclude_current)
        self.conv = keras.layers.Conv1D(
            self.filters, self.kernel_size, dilation_rate=self.dilation_rate, padding="valid"
        )

    def build(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + self._left
        self.conv.build((input_shape[0], length, input_shape[2]))

    def call(self, x):
        y = self.conv(tf.pad(x, [[0, 0], [self._left, 0], [0, 0]]))
        return y[:, :-1] if self.exclude_current else y

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
            "exclude_current": self.exclude_current,
        }


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class CausalConv1DARM(arm_base.FlatARM):
    """Categorical ARM of dilated causal 1D convolutions over the flattened event [1, sec. 2.3].

    Args:
      event_shape: `(H, W, C)`, `(L,)` or `(L, C)`; flattened in raster order (e.g. the 64 pixels
        of 8x8 `digits`, K = 17, as in [1]).
      num_categories: K >= 2.
      filters: channels of every hidden layer, F ([1]: 256).
      num_layers: causal convolutions L >= 1 (the first of option A).
      kernel_size: k >= 1 ([1]: 7 in the book's code).
      dilation_growth: layer l = 1 .. L has dilation growth^(l-1) (1: none, as
        [1, Listing 2.3]; 2: 1, 2, 4, 8 as WaveNet [2]).
      dropout_rate: dropout after each hidden activation in training.
      negative_slope: slope of the leaky ReLU.

    Call: `logits, h = model(x)`, x int `[B, *event_shape]` -> logits `[B, *event_shape, K]`,
    h `[B, *spatial, filters]` (`tfps.models.arm_base.FlatARM`).

    #### References

    [1]: Jakub M. Tomczak. Deep Generative Modeling, chapter 2. Springer, 2022.

    [2]: Aaron van den Oord et al. WaveNet: A Generative Model for Raw Audio. arXiv:1609.03499,
         2016.
    """

    ARCH = ARCH

    def __init__(
        self,
        event_shape,
        num_categories,
        filters=64,
        num_layers=4,
        kernel_size=5,
        dilation_growth=2,
        dropout_rate=0.0,
        negative_slope=0.01,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, **kwargs)
        self.filters = arm_base.check_int("filters", filters)
        self.num_layers = arm_base.check_int("num_layers", num_layers)
        self.kernel_size = arm_base.check_int("kernel_size", kernel_size)
        self.dilation_growth = arm_base.check_int("dilation_growth", dilation_growth)
        self.dropout_rate = arm_base.check_rate("dropout_rate", dropout_rate)
        self.negative_slope = float(negative_slope)
        if self.negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope!r}")
        for layer in range(self.num_layers):  # direct attributes: tracked by tf.train.Checkpoint
            setattr(self, f"causal_conv_{layer}", self.conv_layer(layer))
        self.out = keras.layers.Dense(self.num_categories, name="out")
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.build_weights()

    def conv_layer(self, layer):
        """Causal convolution `layer` (0-based): option A first, dilation growth^layer."""
        return CausalConv1D(
            self.filters,
            self.kernel_size,
            dilation_rate=self.dilation_growth**layer,
            exclude_current=layer == 0,
            name=f"causal_conv_{layer}",
        )

    @property
    def representation_channels(self):
        return self.filters

    @property
    def receptive_field(self):
        """Previous positions the logits at i see (`receptive_field`)."""
        return receptive_field(self.kernel_size, self.num_layers, self.dilation_growth)

    def sequence_call(self, x_onehot, training=False):
        a = tf.concat([x_onehot, tf.ones_like(x_onehot[..., :1])], axis=-1)
        for layer in range(self.num_layers):
            a = getattr(self, f"causal_conv_{layer}")(a)
            a = tf.nn.leaky_relu(a, alpha=self.negative_slope)
            if layer < self.num_layers - 1:
                a = self.dropout(a, training=training)
        return self.out(a), a

    def options(self):
        return {
            "filters": self.filters,
            "num_layers": self.num_layers,
            "kernel_size": self.kernel_size,
            "dilation_growth": self.dilation_growth,
            "dropout_rate": self.dropout_rate,
            "negative_slope": self.negative_slope,
        }
