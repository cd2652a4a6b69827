"""Reparametrization noise for the Gumbel-max trick (seed 000, section 2.2, eq. 5).

A categorical sample is made deterministic given noise:

    x_i = argmax_c (mu_ic(x_<i) + eps_ic),   eps_ic ~ Gumbel(0, 1) i.i.d.          (eq. 5)

Noise is drawn up front, once per sample, as a `[batch, height, width, channels, categories]`
tensor from TFP's `tfd.Gumbel` with a stateless seed, so a sample is reproducible from its seed.
"""
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def as_seed(seed):
    """Normalises a seed to the int32 `[2]` tensor that stateless TF/TFP ops take.

    Accepts an int (-> `[0, seed]`), a pair, or a tensor of shape `[2]`.
    """
    if isinstance(seed, int):
        return tf.constant([0, seed], dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank != 1 or (seed.shape[0] is not None and seed.shape[0] != 2):
        raise ValueError(f"seed must be an int or a pair of ints, got shape {seed.shape}")
    return tf.cast(seed, tf.int32)


def gumbel_noise(shape, seed, dtype=tf.float32):
    """Standard Gumbel noise eps ~ G(0, 1) of `shape` (e.g. `[B, H, W, C, K]`), stateless in `seed`."""
    return tfd.Gumbel(loc=tf.constant(0.0, dtype), scale=tf.constant(1.0, dtype)).sample(
        shape, seed=as_seed(seed))
