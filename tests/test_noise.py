"""Tests for tfps/sampling/noise.py: Gumbel noise, the truncated Gumbel and exact posterior noise.

The posterior property that matters (Appendix B of Wiggers & Hoogeboom, ICML 2020): if
x ~ Categorical(mu) and then eps ~ p(eps | x), eps is i.i.d. standard Gumbel, and
argmax(mu + eps) == x always. The KS tests use fixed seeds; the test of the paper's printed eq. 14
checks that they have the power to tell.
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tfps.sampling import noise


def _sample_categorical(logits, seed):
    flat = tf.reshape(logits, [-1, logits.shape[-1]])
    x = tf.random.stateless_categorical(flat, 1, seed=seed, dtype=tf.int32)[:, 0]
    return tf.reshape(x, logits.shape[:-1])


def _ks_p_value(samples, cdf):
    return scipy.stats.kstest(np.asarray(samples, np.float64).ravel(), cdf).pvalue


def test_gumbel_noise_is_stateless_and_standard():
    a = noise.gumbel_noise((4000,), 3).numpy()
    np.testing.assert_array_equal(a, noise.gumbel_noise((4000,), 3).numpy())
    assert not np.array_equal(a, noise.gumbel_noise((4000,), 4).numpy())
    assert _ks_p_value(a, scipy.stats.gumbel_r.cdf) > 1e-3


def test_truncated_gumbel_stays_below_the_bound_and_has_the_truncated_law():
    location, upper = 0.5, 1.0
    g = noise.truncated_gumbel(tf.fill([20000], location), upper, seed=5).numpy()
    assert g.max() < upper
    law = scipy.stats.gumbel_r(loc=location)
    assert _ks_p_value(g, lambda v: law.cdf(np.minimum(v, upper)) / law.cdf(upper)) > 1e-3
    # An infinite bound is no truncation; extreme gaps stay finite.
    free = noise.truncated_gumbel(tf.zeros([20000]), float("inf"), seed=6).numpy()
    assert _ks_p_value(free, scipy.stats.gumbel_r.cdf) > 1e-3
    far = noise.truncated_gumbel(tf.constant([1e6, -1e6, 0.0]), tf.constant([-1e6, 1e6, 0.0]), 7)
    assert np.all(np.isfinite(far.numpy())) and np.all(far.numpy() <= [-1e6, 1e6, 0.0])


def _random_logits(shape, seed, scale=2.0):
    return scale * tf.random.stateless_normal(shape, seed=(seed, 0))


def test_posterior_noise_reproduces_x_for_every_x():
    logits = _random_logits((64, 3, 5), 1)
    for seed in range(3):
        x = tf.random.stateless_uniform((64, 3), (seed, 9), 0, 5, tf.int32)  # even unlikely x
        eps = noise.posterior_gumbel_noise(logits, x, seed)
        assert eps.shape == logits.shape
        np.testing.assert_array_equal(tf.argmax(logits + eps, -1, output_type=tf.int32), x)
    np.testing.assert_array_equal(
        noise.posterior_gumbel_noise(logits, x, 2), noise.posterior_gumbel_noise(logits, x, 2)
    )


@pytest.mark.parametrize(
    "logits,x",
    [
        ([1e4, -1e4, 0.0, 1e4 + 1e-3], [0, 1, 2, 3]),  # huge spreads, near ties at large scale
        ([3e37, 3e37, 3e37, 3e37], [0, 1, 2, 3]),  # exact ties at the top of float32
        ([1e6, 1e6, -1e6, 0.0], [1, 0, 3, 3]),  # x far below the maximum logit
        ([-float("inf"), 5.0, 5.0, -float("inf")], [1, 2, 1, 2]),  # impossible categories
        ([0.0, 1e-30, -1e-30, 0.0], [0, 1, 2, 3]),
        ([1e4, 1e4 + 1e-3, 1e4 + 2e-3, 1e4 + 3e-3], [3, 0, 1, 2]),  # below ulp at their scale
    ],
)
def test_posterior_noise_is_exact_and_finite_for_extreme_logits(logits, x):
    logits = tf.tile(tf.constant([logits], tf.float32), [4 * 200, 1])
    x = tf.tile(tf.constant(x, tf.int32), [200])
    eps = noise.posterior_gumbel_noise(logits, x, seed=11)
    assert np.all(np.isfinite(eps.numpy()))
    np.testing.assert_array_equal(tf.argmax(logits + eps, -1, output_type=tf.int32), x)


def test_posterior_noise_of_model_samples_is_iid_standard_gumbel():
    # Eq. 12: x ~ Categorical(mu), eps ~ p(eps | x)  =>  eps ~ G^K i.i.d., for every category.
    logits = _random_logits((3000, 4, 4), 2)
    x = _sample_categorical(logits, (3, 4))
    eps = noise.posterior_gumbel_noise(logits, x, seed=5).numpy().reshape(-1, 4)
    for k in range(4):
        assert _ks_p_value(eps[:, k], scipy.stats.gumbel_r.cdf) > 1e-3, k
    # Independent of each other: the correlation of categories is ~0 (12000 pairs: sd ~0.009).
    corr = np.corrcoef(eps.T)
    assert np.abs(corr - np.eye(4)).max() < 0.04


def _eq14_as_printed(logits, x, seed):
    """The paper's eq. 14-15 literally: eps_x ~ G standard, the rest truncated at mu_x + eps_x."""
    is_x = tf.one_hot(x, logits.shape[-1], on_value=True, off_value=False)
    g = noise.gumbel_noise(logits.shape, seed)
    eps_x = tf.reduce_sum(tf.where(is_x, g, 0.0), -1, keepdims=True)
    mu_x = tf.reduce_sum(tf.where(is_x, logits, 0.0), -1, keepdims=True)
    others = noise.truncated_gumbel(logits, mu_x + eps_x, seed + 1) - logits
    return tf.where(is_x, eps_x, others)


def test_the_ks_test_rejects_eq_14_as_printed():
    """Why `posterior_gumbel_noise` is not eq. 14: its noise is not marginally Gumbel."""
    logits = _random_logits((3000, 4, 4), 2)
    x = _sample_categorical(logits, (3, 4))
    eps = _eq14_as_printed(logits, x, 5).numpy().reshape(-1, 4)
    assert min(_ks_p_value(eps[:, k], scipy.stats.gumbel_r.cdf) for k in range(4)) < 1e-6


def test_as_seed_takes_numpy_integers_like_the_exported_sampler():
    expected = noise.as_seed(3).numpy()
    for seed in (np.int64(3), np.int32(3), np.uint8(3)):
        np.testing.assert_array_equal(noise.as_seed(seed).numpy(), expected)
    np.testing.assert_array_equal(
        noise.gumbel_noise((2, 3), np.int64(7)).numpy(),
        noise.gumbel_noise((2, 3), 7).numpy(),
    )
    with pytest.raises(TypeError, match="bool"):
        noise.as_seed(True)
    with pytest.raises(ValueError, match="does not fit in int32"):
        noise.as_seed(2**40)
    with pytest.raises(ValueError, match="pair of ints"):
        noise.as_seed([1, 2, 3])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_posterior_noise_refuses_an_impossible_observed_category(value):
    logits = np.array([[0.0, value, 1.0]], np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite logits at x"):
        noise.posterior_gumbel_noise(logits, np.array([1]), (0, 1))
