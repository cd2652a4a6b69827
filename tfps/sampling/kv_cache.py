"""Key/value-cached calls of a Transformer: the ARM of the sampling method `ancestral_cached`.

Ancestral sampling [1, eq. 2] reads, in each ARM call, only the logits of the variable the call
samples, x_m, which depend on x_<m. In a decoder-only Transformer (`tfps.models.transformer`) the
keys and values of position i in every layer depend on x_<i only [2, sec. 3.2.3], so they stay valid
as long as x_<i does. `KeyValueArm` keeps them in fixed-size caches and computes, in each call, the
positions from the first stale one up to the needed one, one position per example per pass of a
`tf.while_loop` (`Transformer.position_step`) [3]. Without evidence that is one position, O(d)
work, per call instead of the whole network; with evidence, a call also computes the observed
positions between two free ones. Shapes stay static, so the loop compiles with XLA.
`cached_ancestral_sample` runs the same steps in a standalone loop, one position per step.

A position is valid when the caches at it were computed from the current x_<i: an input changed
first at position c leaves positions <= c valid (a fresh example: position 0 only, which reads no
input). So the same ARM serves the batch loop, evidence and the scheduled loop of
`tfps.sampling.loops`, whose refilled slots keep their caches.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Ashish Vaswani et al. Attention Is All You Need. In NeurIPS, 2017.

[3]: CS294-158 Deep Unsupervised Learning, lecture 2: Autoregressive Models. UC Berkeley, 2020.
"""

import tensorflow as tf

from tfps.sampling import events


class KeyValueArm:
    """The cached ARM of `ancestral_cached` for a `tfps.models.transformer.Transformer` (inference
    mode).

    The calls of `tfps.sampling.loops.ArmLoop`, on x int32 `[B, H, W, C]` (the canonical layout of
    the event, `tfps.sampling.events`), with flat raster positions int32 `[B]` (d: none):

      * `empty_cache(batch)`: the cache of no call;
      * `update(x, changed, needed, cache) -> (logits, h, cache)`: positions from
        min(valid, changed + 1) on are recomputed until `needed` is valid;
      * `initial(x, needed)`: the update of the empty cache.

    logits float32 `[B, H, W, C, K]` and h `[B, H, W, F]` (the model's h, `tfps.models.arm_base`)
    are exact at every valid position, `needed` included; later positions may be stale, which
    ancestral sampling never reads. The cache: the model's key/value caches (`empty_caches`), the
    logits `[B, d, K]` and representation `[B, d, F]` of every position computed, and int32 `[B]`
    the number of leading positions valid for the last input.

    Args:
      model: a `tfps.models.transformer.Transformer` (any model with `empty_caches`, `position_step`
        and `pixel_representation`).
    """

    def __init__(self, model):
        self.model = model
        self.num_variables = int(model.num_variables)
        self.num_categories = int(model.num_categories)
        self.image_shape = events.canonical_shape(model.event_shape)

    def empty_cache(self, batch):
        d, k = self.num_variables, self.num_categories
        return (
            self.model.empty_caches(batch),
            tf.zeros([batch, d, k], tf.float32),
            tf.zeros([batch, d, self.model.representation_channels], self.model.compute_dtype),
            tf.zeros([batch], tf.int32),
        )

    def initial(self, x, needed):
        batch = tf.shape(x)[0]
        return self.update(x, tf.zeros([batch], tf.int32), needed, self.empty_cache(batch))

    @staticmethod
    def exact_positions(cache):
        """int32 `[B]`: the flat positions before which the last call's logits are exact."""
        return cache[-1]

    def update(self, x, changed, needed, cache):
        d, k = self.num_variables, self.num_categories
        x = tf.reshape(x, [-1, d])
        caches, logits, h, valid = cache
        valid = tf.minimum(valid, changed + 1)
        needed = tf.where(needed < d, needed, -1)

        def body(caches, logits, h, valid):
            # Every example computes its first stale position, whether it needs it or not (one
            # with none recomputes position d - 1, to the same values).
            t = tf.minimum(valid, d - 1)
            before = tf.gather(x, tf.maximum(t - 1, 0)[:, None], batch_dims=1)[:, 0]
            logits_t, h_t, caches = self.model.position_step(t, tf.one_hot(before, k), caches)
            at_t = tf.equal(tf.range(d)[None, :], t[:, None])[:, :, None]
            logits = tf.where(at_t, logits_t[:, None, :], logits)
            h = tf.where(at_t, h_t[:, None, :], h)
            return caches, logits, h, tf.minimum(valid + 1, d)

        caches, logits, h, valid = tf.while_loop(
            lambda caches, logits, h, valid: tf.reduce_any(needed >= valid),
            body,
            (caches, logits, h, valid),
            maximum_iterations=d,
        )
        image_logits = events.reshape_batch(logits, self.image_shape + (k,))
        image_h = events.reshape_batch(
            self.model.pixel_representation(h), self.image_shape[:2] + (-1,)
        )
        return image_logits, image_h, (caches, logits, h, valid)


def cached_ancestral_sample(model, noise):
    """Ancestral sampling of a `tfps.models.transformer.Transformer`, one position per step with
    key/value caches (`model.position_step`, `model.empty_caches`).

    x_i = argmax_c(logits_i(x_<i) + noise_i) for i = 0 .. d-1 in a `tf.while_loop` whose state
    has static shapes (the caches are `[B, heads, d, head_dim]` per layer), so it runs eagerly and
    traces into a `tf.function` (wrap it in one for speed). The sampler's method
    `ancestral_cached` runs the same steps inside the sampling loop (`KeyValueArm`).

    Args:
      model: the Transformer.
      noise: float `[B, *event_shape, K]` Gumbel noise.
    Returns:
      int32 `[B, *event_shape]`, equal to plain ancestral sampling for the same noise.
    """
    noise = tf.convert_to_tensor(noise)
    expected = tuple(model.event_shape) + (model.num_categories,)
    if not noise.dtype.is_floating or tuple(noise.shape[1:]) != expected:
        raise ValueError(
            f"noise must be a float tensor of shape [batch, {', '.join(map(str, expected))}]"
            f", got {noise.dtype.name} {noise.shape.as_list()}"
        )
    d, k = model.num_variables, model.num_categories
    batch = tf.shape(noise)[0]
    noise = tf.reshape(tf.cast(noise, tf.float32), [batch, d, k])

    def body(t, x, previous, caches):
        logits, _, caches = model.position_step(tf.fill([batch], t), previous, caches)
        value = tf.argmax(logits + tf.gather(noise, t, axis=1), axis=-1, output_type=tf.int32)
        x = x + tf.one_hot(t, d, dtype=tf.int32)[None, :] * value[:, None]
        return t + 1, x, tf.one_hot(value, k), caches

    state = (
        tf.constant(0),
        tf.zeros([batch, d], tf.int32),
        tf.zeros([batch, k]),
        model.empty_caches(batch),
    )
    _, x, _, _ = tf.while_loop(lambda t, *_: t < d, body, state, maximum_iterations=d)
    return tf.reshape(x, tf.concat([[batch], model.event_shape], axis=0))
