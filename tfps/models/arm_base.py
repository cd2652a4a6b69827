"""What the ARM families share: argument checks, the model-config round trip, flattened events.

Every ARM of tfps (`tfps.models.pixelcnn`, `tfps.models.made`, `tfps.models.gated_pixelcnn`,
`tfps.models.conv1d_arm`, `tfps.models.transformer`) is a `keras.Model` with `event_shape`,
`num_categories` K, `num_variables` d, `representation_channels` F (or None), `model_config()`
holding `"arch"`, and

    logits, h = model(x)      x int [B, *event_shape] -> logits [B, *event_shape, K],
                              h [B, *spatial, F] (or None)

autoregressive in the raster order of the flattened event (row-major over all axes, channel last):
logits at flat position i depend on x at positions < i only [1, eq. 2.4]. Images are `(H, W, C)`
with spatial `(H, W)`; sequences `(L,)` with spatial `(L,)`, or `(L, C)` with spatial `(L,)`.

`FlatARM` is the base of the families that model the flattened event as one sequence of d
variables (MADE, causal Conv1D, Transformer): a subclass maps one-hot `[B, d, K]` to logits
`[B, d, K]` and a per-variable representation `[B, d, F]` whose row i depends on x_<i. The
representation of a pixel (a spatial position) is that of its first channel, row `p * C`: it
depends on x at positions < p * C, the earlier pixels only, which is what the learned forecasting
heads of `tfps.models.heads` require of h [2, sec. 2.4].

#### References

[1]: Jakub M. Tomczak. Deep Generative Modeling, chapter 2: Autoregressive Models. Springer, 2022.

[2]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

import keras
import numpy as np
import tensorflow as tf


def check_event_shape(event_shape, ranks=(1, 2, 3)):
    """`event_shape` as a tuple of ints >= 1 of one of the given ranks; ValueError otherwise."""
    try:
        shape = tuple(int(s) for s in event_shape)
    except (TypeError, ValueError):
        raise ValueError(f"event_shape must be a tuple of ints, got {event_shape!r}") from None
    if len(shape) not in ranks or min(shape) < 1:
        names = {1: "(length,)", 2: "(length, channels)", 3: "(height, width, channels)"}
        raise ValueError(
            f"event_shape must be one of {', '.join(names[r] for r in ranks)} with every size "
            f">= 1, got {event_shape!r}"
        )
    return shape


def check_int(name, value, minimum=1):
    """`int(value)`, which must be >= minimum; ValueError naming the argument otherwise."""
    try:
        valid = not isinstance(value, bool) and int(value) == value and int(value) >= minimum
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_rate(name, value):
    """A rate in [0, 1), e.g. dropout."""
    try:
        valid = 0.0 <= float(value) < 1.0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def spatial_shape(event_shape):
    """The spatial positions of an event: `(L,)` for `(L,)`, else all axes but the channel."""
    return tuple(event_shape) if len(event_shape) == 1 else tuple(event_shape[:-1])


def channels(event_shape):
    """C, the variables per spatial position (1 for `(L,)` sequences)."""
    return 1 if len(event_shape) == 1 else int(event_shape[-1])


def options_from_run_config(fields, mapping):
    """Constructor options from a run config's model section.

    `fields`: a dict (or an object with attributes) of the generic model fields (`filters`,
    `num_layers`, `num_heads`, `kernel_size`, `dropout_rate`, ...); `mapping`: `{option: field}`.
    Fields that are missing or None are left to the constructor's defaults.
    """
    get = fields.get if isinstance(fields, dict) else lambda k: getattr(fields, k, None)
    return {option: get(field) for option, field in mapping.items() if get(field) is not None}


class ARMBase(keras.Model):
    """The attributes, one-hot input and config round trip every ARM family shares.

    A subclass sets `ARCH` (its registry name), implements `options()` (its constructor options
    besides event_shape and num_categories, JSON-able), `call` and `representation_channels`.

    Args:
      event_shape: the shape of one example (`check_event_shape` with the subclass's `RANKS`).
      num_categories: K >= 2, the values each variable takes.
    """

    ARCH = None
    RANKS = (1, 2, 3)

    def __init__(self, event_shape, num_categories, **kwargs):
        super().__init__(**kwargs)
        self.event_shape = check_event_shape(event_shape, self.RANKS)
        self.num_categories = check_int("num_categories", num_categories, 2)

    @property
    def num_variables(self):
        """d = prod(event_shape), the number of sequential variables."""
        return int(np.prod(self.event_shape))

    @property
    def representation_channels(self):
        return None

    def build_weights(self):
        """Creates every weight with one call on a zero example (end of a subclass __init__)."""
        self(tf.zeros((1,) + self.event_shape, tf.int32))

    def one_hot(self, x):
        """int `[B, *event_shape]` -> float32 one-hot `[B, *event_shape, K]`; a float
        `[B, *event_shape, K]` input is taken as one-hot already (so gradients can reach it)."""
        x = tf.convert_to_tensor(x)
        if x.dtype.is_floating and x.shape.rank == len(self.event_shape) + 2:
            return tf.cast(x, tf.float32)
        return tf.one_hot(tf.cast(x, tf.int32), self.num_categories, dtype=tf.float32)

    def options(self):
        raise NotImplementedError

    def model_config(self):
        """The constructor arguments as JSON-able values, with `"arch"` (the registry name)."""
        return {
            "arch": self.ARCH,
            "event_shape": list(self.event_shape),
            "num_categories": self.num_categories,
            **self.options(),
        }

    def get_config(self):
        return {**super().get_config(), **self.model_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        arch = config.pop("arch", cls.ARCH)
        if arch != cls.ARCH:
            raise ValueError(f"a {cls.__name__} config needs arch {cls.ARCH!r}, got {arch!r}")
        return cls(**config)


class FlatARM(ARMBase):
    """An ARM over the flattened event: a subclass implements `sequence_call`.

    `sequence_call(x_onehot, training)`: float32 `[B, d, K]` -> `(logits [B, d, K],
    h [B, d, F] or None)`, logits and h at row i depending on rows < i of the input only.
    `call` flattens x in raster order, and returns logits `[B, *event_shape, K]` and h at the first
    channel of every spatial position, `[B, *spatial, F]` (see the module docstring).
    """

    @property
    def spatial_shape(self):
        return spatial_shape(self.event_shape)

    def sequence_call(self, x_onehot, training=False):
        raise NotImplementedError

    def call(self, x, training=False):
        return self.flat_call(x, training=training)

    def flat_call(self, x, **options):
        """`call`'s body: `sequence_call(x_onehot [B, d, K], **options)` on the flattened x, its
        outputs in the event shape (a subclass whose `call` takes more options passes them)."""
        x_onehot = self.one_hot(x)
        batch = tf.shape(x_onehot)[0]
        d, k = self.num_variables, self.num_categories
        logits, h = self.sequence_call(tf.reshape(x_onehot, [batch, d, k]), **options)
        logits = tf.reshape(logits, tf.concat([[batch], self.event_shape, [k]], axis=0))
        logits = tf.cast(logits, tf.float32)  # float32 under mixed precision too
        return logits, (None if h is None else self.pixel_representation(h))

    def pixel_representation(self, h):
        """`[B, d, F]` -> `[B, *spatial, F]`: the row of each position's first channel."""
        c = channels(self.event_shape)
        if c > 1:
            h = h[:, ::c]
        return tf.reshape(h, tf.concat([tf.shape(h)[:1], self.spatial_shape, [-1]], axis=0))


def right_shift_sequence(x, first=None):
    """`[B, d, F]` shifted one step along d: row i holds row i - 1 of x, row 0 holds `first`
    (`[F]`, default zeros). Makes a causal (inclusive) map strictly causal [1, sec. 2.2.3]."""
    shifted = tf.pad(x[:, :-1], [[0, 0], [1, 0], [0, 0]])
    if first is None:
        return shifted
    is_first = tf.cast(tf.range(tf.shape(x)[1]) == 0, x.dtype)[None, :, None]
    return shifted + is_first * tf.cast(first, x.dtype)
