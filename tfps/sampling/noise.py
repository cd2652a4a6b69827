"""Reparametrization noise for the Gumbel-max trick [1, sec. 2.2, eq. 5], [2].

A categorical sample is made deterministic given noise:

    x_i = argmax_c (mu_ic(x_<i) + eps_ic),   eps_ic ~ Gumbel(0, 1) i.i.d.      [1, eq. 5]

Noise is drawn up front, once per sample, as a `[batch, height, width, channels, categories]`
tensor from TFP's `tfd.Gumbel` with a stateless seed, so a sample is reproducible from its seed.
`posterior_gumbel_noise` draws the noise given the sample [1, Appendix B], with truncated Gumbels
[2, 3].

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Chris J. Maddison, Daniel Tarlow, Tom Minka. A* Sampling. In NeurIPS, 2014.

[3]: Wouter Kool, Herke van Hoof, Max Welling. Stochastic Beams and Where to Find Them: The
     Gumbel-Top-k Trick for Sampling Sequences Without Replacement. In ICML, 2019.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def as_seed(seed):
    """Normalises a seed to the int32 `[2]` tensor that stateless TF/TFP ops take.

    Accepts an int or numpy integer (-> `[0, seed]`, as the exported sampler takes them), a pair,
    or a tensor of shape `[2]`. Raises TypeError for a bool and ValueError for an int outside
    int32 or another shape.
    """
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int or a pair of ints, got the bool {seed}")
    if isinstance(seed, (int, np.integer)):
        if not -(2**31) <= int(seed) < 2**31:
            raise ValueError(f"seed {int(seed)} does not fit in int32")
        return tf.constant([0, int(seed)], dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank != 1 or (seed.shape[0] is not None and seed.shape[0] != 2):
        raise ValueError(f"seed must be an int or a pair of ints, got shape {seed.shape}")
    return tf.cast(seed, tf.int32)


def gumbel_noise(shape, seed, dtype=tf.float32):
    """Standard Gumbel noise eps ~ G(0, 1) of `shape` (e.g. `[B, H, W, C, K]`), stateless in
    `seed`."""
    return tfd.Gumbel(loc=tf.constant(0.0, dtype), scale=tf.constant(1.0, dtype)).sample(
        shape, seed=as_seed(seed)
    )


def truncated_gumbel(location, upper, seed, dtype=tf.float32):
    """Gumbel(location, 1) conditioned on being below `upper`, drawn stably. Shapes broadcast.

    If G ~ Gumbel(location), then -log(exp(-upper) + exp(-G)) ~ TG(location | upper) [2, 3]:
    inverting the Gumbel CDF F(g) = exp(-exp(location - g)) on
    [0, F(upper)] gives exactly this map. It is evaluated as

        min(upper, G) - softplus(-|upper - G|)

    (the same value), which neither overflows nor loses the small term when upper and G are far
    apart. `upper = +inf` gives the untruncated G.
    """
    location = tf.convert_to_tensor(location, dtype)
    upper = tf.convert_to_tensor(upper, dtype)
    shape = tf.broadcast_dynamic_shape(tf.shape(location), tf.shape(upper))
    g = location + gumbel_noise(shape, seed, dtype)
    return _truncate_below(upper, g)


def _truncate_below(upper, g):
    """-logaddexp(-upper, -g), stably: the Gumbel `g` pushed below `upper` (`truncated_gumbel`)."""
    return tf.minimum(upper, g) - tf.nn.softplus(-tf.abs(upper - g))


def posterior_gumbel_noise(logits, x, seed):
    """Exact posterior reparametrization noise eps ~ p(eps | x) for Gumbel-max [1, Appendix B].

        M = max_c (mu_c + eps_c) ~ Gumbel(logsumexp_c mu_c),   eps_x = M - mu_x,
        mu_c + eps_c ~ TG(mu_c | M),  i.e.  eps_c = TG(mu_c | M) - mu_c   for c != x  [1, eq. 15]

    independently given M [2, 3]. Drawing x ~ Categorical(mu) and then eps ~ p(eps | x) gives
    eps ~ G^K i.i.d., which lets data pairs (x, eps) stand in for samples [1, eq. 12]. The
    derivation, and why eps_x is not drawn from a standard Gumbel as [1, eq. 14] prints it, are in
    docs/proofs.md ("Posterior Gumbel noise").

    Categories with mu_c = -inf keep a standard Gumbel (their constraint always holds). mu_x must
    be finite (x must be possible). In floating point, argmax(mu + eps) == x is enforced exactly:
    a perturbed value that rounds up to the maximum (only for extreme logits) is moved just below
    it.

    Args:
      logits: float `[..., K]`, the ARM's mu (unnormalised log-probabilities are fine).
      x: int `[...]`, the observed categories.
      seed: stateless seed (`as_seed`).
    Returns:
      eps, float `[..., K]` like `logits`, with argmax(logits + eps, -1) == x.
    """
    logits = tf.convert_to_tensor(logits)
    dtype = logits.dtype
    seed = as_seed(seed)
    max_seed, rest_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    num_categories = tf.shape(logits)[-1]
    is_x = tf.one_hot(tf.cast(x, tf.int32), num_categories, on_value=True, off_value=False)
    log_normaliser = tf.reduce_logsumexp(logits, axis=-1)
    top = log_normaliser + gumbel_noise(tf.shape(log_normaliser), max_seed, dtype)  # M
    mu_x = tf.reduce_sum(tf.where(is_x, logits, tf.zeros_like(logits)), axis=-1)
    # InvalidArgumentError for an impossible (-inf) or NaN mu_x, eagerly and in graphs (not under
    # XLA, where asserts compile away).
    mu_x = tf.debugging.assert_all_finite(mu_x, "posterior noise needs finite logits at x (mu_x)")
    # Work relative to the logits, eps_c = TG(0 | M - mu_c) with G standard: for mu_c = -inf the
    # bound is +inf and eps_c is G itself, without inf - inf.
    others = _truncate_below(
        top[..., None] - logits, gumbel_noise(tf.shape(logits), rest_seed, dtype)
    )
    eps = tf.where(is_x, (top - mu_x)[..., None], others)
    return _enforce_argmax(logits, eps, is_x)


def _enforce_argmax(logits, eps, is_x):
    """Makes fl(logits + eps) strictly largest at x, moving the others down by a few ulps.

    Mathematically TG(mu_c | M) < M, but after rounding mu_c + eps_c may equal fl(mu_x + eps_x)
    (or exceed it) when logits are huge. Such eps_c are set to (M' - mu_c) minus a margin of a few
    ulps of the magnitudes involved, where M' = fl(mu_x + eps_x); the margin doubles until the sum
    is strictly below M'. Touches only values within rounding error of the maximum.
    """
    perturbed = logits + eps
    top = tf.reduce_max(
        tf.where(
            is_x, perturbed, tf.fill(tf.shape(perturbed), tf.constant(-float("inf"), eps.dtype))
        ),
        axis=-1,
        keepdims=True,
    )
    finite = tf.math.is_finite(logits)
    scale = tf.maximum(tf.maximum(tf.abs(top), tf.abs(logits)), tf.constant(1.0, eps.dtype))
    ulp = tf.math.nextafter(scale, tf.constant(float("inf"), eps.dtype)) - scale
    for k in range(2, 12):  # margin 4, 8, ... ulps: the first try suffices in practice
        bad = ~is_x & finite & (logits + eps >= top)
        eps = tf.where(bad, (top - logits) - (2.0**k) * ulp, eps)
    return eps
