"""The ARM protocol as the sampler sees it: what any autoregressive model must offer, the
canonical image-shaped call `arm(x) -> (logits, h)` every sampling loop makes, and the likelihood
its logits define, log p(x) = sum_i log softmax(logits_i(x_<i))[x_i] [1, eq. 1] (`log_prob`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

import tensorflow as tf

from tfps.sampling import events

PROTOCOL = ("event_shape", "num_categories", "num_variables", "representation_channels")


def check_protocol(model):
    """Raises TypeError naming the protocol attributes `model` lacks. Returns the model."""
    missing = [a for a in PROTOCOL + ("model_config",) if not hasattr(model, a)]
    if missing:
        raise TypeError(
            f"{type(model).__name__} is not a tfps ARM: it lacks {', '.join(missing)} "
            "(see tfps.models.arms, or wrap a logits function with tfps.from_logits_fn)"
        )
    events.check_event_shape(model.event_shape)
    return model


def event_shape_of(model):
    """`model.event_shape`, or `image_shape` for models from before the protocol."""
    shape = getattr(model, "event_shape", None)
    return events.check_event_shape(model.image_shape if shape is None else shape)


def canonical_arm(model):
    """The canonical `arm(x [B, H, W, C], training=False) -> (logits [B, H, W, C, K],
    h [B, H, W, F])` of a protocol model; h is a zeros `[B, 1, 1, 1]` placeholder when the model
    has no representation. For images with h, the model itself is called."""
    event = event_shape_of(model)
    canonical = events.canonical_shape(event)
    if event == canonical and model.representation_channels is not None:
        return lambda x, training=False: model(x, training=training)

    def arm(x, training=False):
        logits, h = model(events.reshape_batch(x, event), training=training)
        logits = events.reshape_batch(logits, canonical + (-1,))
        if h is None:
            return logits, tf.zeros(tf.concat([tf.shape(x)[:1], [1, 1, 1]], axis=0))
        return logits, events.reshape_batch(h, canonical[:2] + (-1,))

    return arm


def log_prob(logits, x, where=None):
    """log P_ARM(x) in nats per example: sum_i log softmax(logits_i)[x_i] [1, eq. 1] -> `[B]`;
    with `where`, the sum over the variables where it is true only.

    Any event shape: x int `[B, *event_shape]`, logits float `[B, *event_shape, K]`, where bool
    `[B, *event_shape]`.
    """
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(x, tf.int32), logits=logits)
    if where is not None:
        nll = tf.where(where, nll, tf.zeros_like(nll))
    rank = tf.convert_to_tensor(logits).shape.rank
    axis = tf.range(1, tf.rank(nll)) if rank is None else list(range(1, rank - 1))
    return -tf.reduce_sum(nll, axis=axis)
