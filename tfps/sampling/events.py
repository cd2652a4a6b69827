"""Event shapes: the shape of one example of an ARM, and the engine's canonical image layout.

An event is an image `(H, W, C)`, a sequence `(L,)` or a sequence of vectors `(L, C)`; its d =
prod(event_shape) variables are ordered in raster order (row-major over all axes, channel last)
[1, eq. 1]. The sampler, forecasters and serving work on images `[B, H, W, C]`: an event maps to
the canonical image `canonical_shape(event_shape)` with the same raster order, so a sequence is a
one-row image (`(L,)` -> `(1, L, 1)`, `(L, C)` -> `(1, L, C)`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import numbers

import numpy as np
import tensorflow as tf

# The one way to tell that ops are traced for XLA, which drops assertions (no public API has it).
from tensorflow.python.ops import control_flow_util


def check_event_shape(event_shape):
    """The event shape as a tuple of ints; ValueError unless `(H, W, C)`, `(L,)` or `(L, C)`."""
    shape = tuple(int(s) for s in event_shape)
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise ValueError(f"an event shape is (H, W, C), (L,) or (L, C) >= 1, got {shape}")
    return shape


def canonical_shape(event_shape):
    """The engine's image layout `(H, W, C)` of an event: `(L,)` -> `(1, L, 1)`, `(L, C)` ->
    `(1, L, C)`, images unchanged (the raster order is the same)."""
    shape = check_event_shape(event_shape)
    return {1: (1,) + shape + (1,), 2: (1,) + shape, 3: shape}[len(shape)]


def axis_names(event_shape):
    """The names of the event's axes, for messages: ("height", "width", "channels"), ..."""
    rank = len(check_event_shape(event_shape))
    return {1: ("length",), 2: ("length", "channels"), 3: ("height", "width", "channels")}[rank]


def position(flat_index, event_shape):
    """The event coordinates of flat raster position `flat_index`, a tuple of ints."""
    return tuple(int(i) for i in np.unravel_index(int(flat_index), check_event_shape(event_shape)))


def reshape_batch(t, shape):
    """`t` `[B, ...]` reshaped to `[B, *shape]` (B dynamic); `shape` may end in -1."""
    return tf.reshape(t, tf.concat([tf.shape(t)[:1], list(shape)], axis=0))


def under_xla():
    """Whether ops are being traced into an XLA-compiled function (`jit_compile=True`, or inside
    one), where TensorFlow compiles assertions (Assert, CheckNumerics) away."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _refuse_under_xla(name):
    """ValueError when traced under XLA: the value checks of `name` would be compiled away."""
    if under_xla():
        raise ValueError(
            f"{name} cannot be checked inside an XLA-compiled function (jit_compile=True drops "
            "assertions, so NaN or out-of-range values would pass): call the sampler eagerly or "
            "from a plain tf.function; a sampler built with jit_compile=True compiles its loop "
            "after checking its inputs"
        )


def check_range(x, name, num_categories):
    """`x` (an integer or bool tensor) behind the check that its values lie in [0, K): ValueError
    eagerly, an in-graph assert (InvalidArgumentError) when traced. The extremes are taken in
    `x`'s own dtype, so that an int64 value does not wrap into range when cast to int32.
    ValueError when traced under XLA, which would compile the assert away."""
    if not tf.executing_eagerly():
        _refuse_under_xla(name)
    values = tf.cast(x, tf.int32) if x.dtype.is_bool else x
    lo, hi = (tf.cast(f(values), tf.int64) for f in (tf.reduce_min, tf.reduce_max))
    empty = tf.equal(tf.size(values), 0)  # then lo, hi are the dtype's extremes: nothing to check
    message = f"{name} values must lie in [0, {num_categories}), found values in ["
    if tf.executing_eagerly():
        if not bool(empty) and (int(lo) < 0 or int(hi) >= num_categories):
            raise ValueError(f"{message}{int(lo)}, {int(hi)}]")
        return x
    ok = empty | ((lo >= 0) & (hi < num_categories))
    text = tf.strings.join([message, tf.strings.as_string(lo), ", ", tf.strings.as_string(hi), "]"])
    check = tf.debugging.Assert(ok, [text], name=f"check_{name}_range")
    with tf.control_dependencies([check]):
        return tf.identity(x)


def check_index(index, count, name="ordering_index"):
    """`index` checked as an index into `count` things (the one check of an ordering index): a
    Python or numpy integer outside [0, count), a bool, a float or anything else is a ValueError
    naming `name`, an integer in range comes back as an int. An integer tensor comes back behind
    an in-graph assert that it lies in [0, count) (InvalidArgumentError): `tf.gather` on a GPU
    returns zeros for an index out of range instead of failing. The assert holds no string op, so
    it traces under XLA, which compiles it away (callers there draw the index in range)."""
    if isinstance(index, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer in [0, {count}), got {index!r}")
    if isinstance(index, numbers.Integral):
        if not 0 <= int(index) < count:
            raise ValueError(f"{name} must be in [0, {count}), got {index!r}")
        return int(index)
    if not tf.is_tensor(index):
        raise ValueError(f"{name} must be an integer in [0, {count}), got {index!r}")
    if not index.dtype.is_integer:
        raise ValueError(f"{name} must be an integer, got dtype {index.dtype.name}")
    in_range = tf.reduce_all((index >= 0) & (index < tf.cast(count, index.dtype)))
    message = f"{name} must be in [0, {count}), got"  # then the index: no string ops under XLA
    check = tf.debugging.Assert(in_range, [message, index], name=f"check_{name}")
    with tf.control_dependencies([check]):
        return tf.identity(index)


def validate_events(x, event_shape, num_categories, name="x"):
    """Checks that `x` is an integer `[B, *event_shape]` batch with values in [0, K): the one
    check of category indices at every public entry (samplers' evidence, also through
    `ExportedSampler`; inpainting's x; decoders' latents).

    Raises ValueError naming the problem (dtype, shape or range; eagerly, or when traced under
    XLA, where the range cannot be checked); traced without XLA, the range is an in-graph assert
    (InvalidArgumentError). Returns an int32 tensor.
    """
    x = tf.convert_to_tensor(x)
    if not (x.dtype.is_integer or x.dtype.is_bool):
        raise ValueError(f"{name} must hold integer category indices, got dtype {x.dtype.name}")
    expected = check_event_shape(event_shape)
    if x.shape.rank != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"{name} must have shape [batch, {', '.join(map(str, expected))}] "
            f"(batch, {', '.join(axis_names(expected))}), got {x.shape.as_list()}"
        )
    return tf.cast(check_range(x, name, int(num_categories)), tf.int32)


def check_noise(noise, event_shape):
    """Noise must be floating `[B] + event_shape` (`(H, W, C, K)`, or any ARM event shape then K)
    with B >= 1, and finite; returns it as float32. ValueError naming the problem (eagerly, or
    traced under XLA, which would compile the finiteness check away); traced without XLA, the
    finiteness is an in-graph check (InvalidArgumentError)."""
    noise = tf.convert_to_tensor(noise)
    expected = tuple(event_shape)
    if not noise.dtype.is_floating:
        raise ValueError(f"noise must be a float tensor, got dtype {noise.dtype.name}")
    if noise.shape.rank != len(expected) + 1 or tuple(noise.shape[1:]) != expected:
        raise ValueError(
            f"noise must have shape [batch, {', '.join(map(str, expected))}] "
            f"(batch, {', '.join(axis_names(expected[:-1]))}, categories), "
            f"got {noise.shape.as_list()}"
        )
    if noise.shape[0] is not None and noise.shape[0] < 1:
        raise ValueError("noise must hold at least one example (batch size >= 1)")
    noise = tf.cast(noise, tf.float32)
    if not tf.executing_eagerly():  # a traced caller: an in-graph check, refused under XLA
        _refuse_under_xla("noise")
        return tf.debugging.assert_all_finite(noise, "noise must be finite (no NaN or infinity)")
    values = noise.numpy()
    finite = np.isfinite(values)
    if not finite.all():  # NaN or an infinity would decide an argmax arbitrarily
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"noise must be finite: found {int((~finite).sum())} NaN or infinite values, the "
            f"first at index {list(first)} ({float(values[first])})"
        )
    return noise


def check_evidence(evidence, evidence_mask, batch, image_shape, num_categories):
    """Validated `(evidence int32, evidence_mask bool)`, both `[batch, *event_shape]` (images:
    `[batch, H, W, C]`); zeros and all-False (nothing observed) when both are None."""
    shape = (batch,) + tuple(image_shape)
    if evidence is None and evidence_mask is None:
        return tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool)
    if evidence is None or evidence_mask is None:
        raise ValueError("evidence and evidence_mask must be given together")
    evidence = validate_events(evidence, image_shape, num_categories, "evidence")
    evidence_mask = tf.convert_to_tensor(evidence_mask)
    if evidence_mask.dtype != tf.bool:
        raise ValueError(f"evidence_mask must be bool, got dtype {evidence_mask.dtype.name}")
    if tuple(evidence.shape) != shape or tuple(evidence_mask.shape) != shape:
        raise ValueError(
            f"evidence and evidence_mask must have shape {list(shape)}, got "
            f"{evidence.shape.as_list()} and {evidence_mask.shape.as_list()}"
        )
    return evidence, evidence_mask


# ------------------------------------------------------ a prefix of a sequence (of codes)


def check_num_codes(num_codes, code_length):
    """Raises ValueError unless the int `num_codes` is in 1..code_length; returns it."""
    if isinstance(num_codes, bool) or not 1 <= int(num_codes) <= code_length:
        raise ValueError(
            f"num_codes must be in 1..{code_length} (the code length), got {num_codes!r}"
        )
    return int(num_codes)


def pad_codes(codes, num_codes, code_length):
    """The first `num_codes` codes `[B, j(, C)]` followed by zeros: `[B, code_length(, C)]`."""
    codes = tf.convert_to_tensor(codes)
    padding = [[0, 0], [0, code_length - num_codes]] + [[0, 0]] * (codes.shape.rank - 2)
    return tf.pad(codes, padding)
