"""MADE: a masked autoencoder for distribution estimation [1], with categorical outputs.

A dense network on the one-hot flattened event whose weight matrices are multiplied by constant
binary masks, so that the output for variable i is computed from x_<i only [1, sec. 4]. Every unit
gets a degree m: input units of variable j (its K one-hot units) have degree j + 1, hidden units
degrees in [1, d - 1], output units of variable i degree i + 1, and

    hidden mask   M[k', k] = 1[m(k) >= m(k')]   (a unit sees units of degree <= its own)
    output mask   M[k, o]  = 1[m(o) > m(k)]     (strict: output i never sees x_i)   [1, sec. 4]

so a hidden unit of degree m depends on variables j < m only, and the logits of variable i
(degree i + 1) on hidden units of degree <= i, hence on x_<i. The ordering is the natural
(raster) one and the masks fixed: no order- or connectivity-agnostic training [1] (k orderings
sharing the weights: `tfps.models.farm_made.OrderedMADE`). Hidden degrees are spread evenly over
[1, d - 1] (unit k of n: 1 + floor(k (d - 1) / n)) rather than drawn at random, so a model is a
function of its config alone. A dense map of the whole event has no per-position representation,
so MADE returns no h (`representation_channels` None): learned forecasting uses the unshared heads.

#### References

[1]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder for
     Distribution Estimation. In ICML, 2015.

[2]: CS294-158 Deep Unsupervised Learning, lecture 2: Autoregressive Models. UC Berkeley, 2020.
"""

import keras
import numpy as np
import tensorflow as tf

from tfps.models import arm_base
from tfps.models import layers as tfps_layers

ARCH = "made"
# Constructor option -> generic model field of the run config (tfps.train.config).
RUN_CONFIG_FIELDS = {
    "hidden_units": "filters",
    "num_layers": "num_layers",
    "dropout_rate": "dropout_rate",
}


def made_degrees(num_variables, num_categories, hidden_units, num_layers, variable_degrees=None):
    """The unit degrees `[input [d*K], hidden layer 1 .. L [units each], output [d*K]]`.

    `variable_degrees`: the degree of each of the d variables (default 1 .. d, the natural order;
    in an ordering, the generation step + 1, `tfps.models.farm_made`). Hidden degrees do not
    depend on it."""
    d = int(num_variables)
    if variable_degrees is None:
        variable_degrees = np.arange(1, d + 1)
    variable = np.repeat(np.asarray(variable_degrees), num_categories)
    hidden = 1 + (np.arange(hidden_units) * max(d - 1, 1)) // int(hidden_units)
    return [variable] + [hidden] * int(num_layers) + [variable]


def made_masks(degrees):
    """Float32 masks `[n_in, n_out]` between consecutive layers of `made_degrees` [1, sec. 4]:
    >= into the hidden layers, strict > into the outputs."""
    masks = [
        (m_out[None, :] >= m_in[:, None]).astype(np.float32)
        for m_in, m_out in zip(degrees[:-2], degrees[1:-1])
    ]
    masks.append((degrees[-1][None, :] > degrees[-2][:, None]).astype(np.float32))
    return masks


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class MaskedDense(keras.layers.Layer):
    """A dense layer with a constant 0/1 mask on its kernel: y = x (W * M) + b [1, sec. 4].

    Args:
      mask: `[n_in, n_out]` 0/1 array (a constant, built once), or `[k, n_in, n_out]`: k masks
        of one shared kernel, chosen per call by `mask_index` (a family of orderings,
        `tfps.models.farm_made`).
    Shapes: `[..., n_in] -> [..., n_out]`; `call(x, mask_index=0)` (ignored for one mask).

    #### References

    [1]: Mathieu Germain et al. MADE: Masked Autoencoder for Distribution Estimation. In ICML,
         2015.
    """

    def __init__(self, mask, **kwargs):
        super().__init__(**kwargs)
        self.mask_values = np.asarray(mask, np.float32)
        if self.mask_values.ndim not in (2, 3):
            raise ValueError(
                f"mask must be [inputs, outputs] or [masks, inputs, outputs], got shape "
                f"{self.mask_values.shape}"
            )
        self._mask = tf.constant(self.mask_values, self.compute_dtype)

    def build(self, input_shape):
        n_in, n_out = self.mask_values.shape[-2:]
        if input_shape[-1] is not None and input_shape[-1] != n_in:
            raise ValueError(f"MaskedDense expects {n_in} input features, got {input_shape[-1]}")
        self.kernel = self.add_weight(
            name="kernel", shape=(n_in, n_out), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(n_out,), initializer="zeros")

    def call(self, x, mask_index=0):
        mask = self._mask if self.mask_values.ndim == 2 else tf.gather(self._mask, mask_index)
        return tf.matmul(x, self.kernel * mask) + self.bias

    def get_config(self):
        return {**super().get_config(), "mask": self.mask_values.tolist()}


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class MADE(arm_base.FlatARM):
    """Categorical MADE over the flattened event [1], as an ARM of tfps.

        a_0 = onehot(x) in R^{d K},  a_l = relu(MaskedDense_l(a_{l-1})),  logits = MaskedDense(a_L)

    `logits[..., i, :]` depends on x_<i only (raster order of the flattened event).

    Args:
      event_shape: `(H, W, C)`, `(L,)` or `(L, C)`; flattened in raster order.
      num_categories: K >= 2.
      hidden_units: units per hidden layer (config field `filters`; [1]: 500).
      num_layers: hidden layers >= 1 (config field `num_layers`; [1]: 1 or 2).
      dropout_rate: dropout after each hidden layer in training.

    Call: `logits, h = model(x)`, x int `[B, *event_shape]` -> logits `[B, *event_shape, K]`,
    h None.

    #### References

    [1]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder
         for Distribution Estimation. In ICML, 2015.
    """

    ARCH = ARCH

    def __init__(
        self,
        event_shape,
        num_categories,
        hidden_units=500,
        num_layers=1,
        dropout_rate=0.0,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, **kwargs)
        self.hidden_units = arm_base.check_int("hidden_units", hidden_units)
        self.num_layers = arm_base.check_int("num_layers", num_layers)
        self.dropout_rate = arm_base.check_rate("dropout_rate", dropout_rate)
        masks = self.masks()
        # Direct attributes, not a list: tf.train.Checkpoint tracks these in a Keras 3 model.
        for i, mask in enumerate(masks[:-1]):
            setattr(self, f"hidden_{i}", MaskedDense(mask, name=f"hidden_{i}"))
        self.out = MaskedDense(masks[-1], name="out")
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.build_weights()

    def masks(self):
        """The masks of the hidden layers and the output layer (`made_masks`)."""
        degrees = made_degrees(
            self.num_variables, self.num_categories, self.hidden_units, self.num_layers
        )
        return made_masks(degrees)

    def sequence_call(self, x_onehot, training=False, mask_index=0):
        """`mask_index` picks the masks of layers with several (`tfps.models.farm_made`)."""
        batch = tf.shape(x_onehot)[0]
        d, k = self.num_variables, self.num_categories
        a = tf.reshape(x_onehot, [batch, d * k])
        for i in range(self.num_layers):
            hidden = getattr(self, f"hidden_{i}")(a, mask_index=mask_index)
            a = self.dropout(tf.nn.relu(hidden), training=training)
        return tf.reshape(self.out(a, mask_index=mask_index), [batch, d, k]), None

    def options(self):
        return {
            "hidden_units": self.hidden_units,
            "num_layers": self.num_layers,
            "dropout_rate": self.dropout_rate,
        }
