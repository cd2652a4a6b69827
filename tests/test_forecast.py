"""Tests for tfps/sampling/forecasters.py: learned forecasting (eq. 9-10) and forecast accuracy.

* nothing unknown at sampling time reaches a learned forecast (perturbation, as for the ARM);
* `learned` and `learned_unshared` are exact samplers: for random noise they return the sample of
  the independent eager ancestral loop, a fixed point of eq. 8, untrained and briefly trained;
* the KL of eq. 9 pairs each module with the right ARM conditional and never trains the ARM's
  output; the accuracies count what they say.
"""

import dataclasses
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import heads as heads_lib
from tfps.sampling import forecasters, predictive
from tfps.sampling import noise as noise_lib
from tfps.train import forecasting, losses

import oracles
from tiny_models import stripes as _stripes
from tiny_models import tiny_model as _model


def _both_heads(model, steps):
    return (
        heads_lib.heads_for_model(model, steps, shared=True),
        heads_lib.heads_for_model(model, steps, shared=False),
    )


def _train_jointly(model, heads, steps=30):
    """A few joint steps (bpd + forecast KL of both kinds of heads) on stripes: forecasts matter."""
    data = tf.constant(_stripes(model.image_shape, model.num_categories))
    terms = [losses.BPD_TERM] + [
        dataclasses.replace(losses.forecast_loss_term(head, 1.0), name=f"forecast_{i}")
        for i, head in enumerate(heads)
    ]
    variables = list(model.trainable_variables)
    for head in heads:
        variables += list(head.trainable_variables)
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function
    def step(seed):
        with tf.GradientTape() as tape:
            total, values = losses.compute_loss(model, data, terms, training=True, seed=seed)
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return values

    for i in range(steps):
        step(tf.constant([0, i]))
    return data


CASES = {  # name: (image_shape, K, T, trained)
    "c1_T3": ((5, 4, 1), 3, 3, False),
    "c3_T1": ((3, 3, 3), 2, 1, False),
    "trained_c1_T3": ((6, 5, 1), 2, 3, True),
    "trained_c3_T1": ((4, 3, 3), 5, 1, True),
}


@functools.lru_cache(maxsize=None)
def _make_case(name):
    image_shape, k, steps, trained = CASES[name]
    model = _model(image_shape, k, seed=3)
    heads = _both_heads(model, steps)
    data = _train_jointly(model, heads) if trained else None
    return model, heads, data


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    return _make_case(request.param)


@pytest.fixture(scope="module", params=sorted(n for n, c in CASES.items() if c[3]))
def trained_case(request):
    return _make_case(request.param)


def test_learned_methods_equal_the_ancestral_reference_and_are_fixed_points(case):
    model, heads, _ = case
    sampler = predictive.sampler_for_model(
        model, heads=heads[0], forecasters=forecasters.learned_forecasters(heads[1])
    )
    learned = ("learned", "learned_argmax", "learned_unshared", "learned_unshared_argmax")
    assert set(learned) <= set(sampler.methods)
    d = model.num_variables
    for seed in range(2):
        noise = noise_lib.gumbel_noise((3,) + model.image_shape + (model.num_categories,), seed)
        reference = oracles.ancestral_reference(model, noise)
        np.testing.assert_array_equal(
            oracles.reparametrized_output(model, reference, noise), reference
        )
        for method in learned:
            result = sampler.sample(noise, method)
            np.testing.assert_array_equal(
                result.samples.numpy(), reference, err_msg=f"method {method}, seed {seed}"
            )
            assert 1 <= int(result.arm_calls) <= d
            assert int(result.arm_calls) == result.arm_calls_per_example.numpy().max()


def test_briefly_trained_heads_learn_and_save_calls(trained_case):
    model, heads, data = trained_case
    # On the trained ARM, trained heads match its conditionals far better than fresh ones.
    arm_logits, h = model(data)
    noise = noise_lib.posterior_gumbel_noise(arm_logits, data, 0)
    for trained, fresh in zip(heads, _both_heads(model, heads[0].steps)):

        def kl(head):
            return float(
                tf.reduce_sum(
                    forecasting.forecast_kl(
                        forecasting.head_logits(head, data, h, noise), arm_logits
                    )
                )
            )

        assert kl(trained) < 0.5 * kl(fresh), trained.method
    sampler = predictive.sampler_for_model(model, heads=heads[0])
    noise = noise_lib.gumbel_noise((4,) + model.image_shape + (model.num_categories,), 7)
    learned = int(sampler.sample(noise, "learned").arm_calls)
    assert learned <= int(sampler.sample(noise, "zeros").arm_calls)
    assert learned < model.num_variables // 2


def test_learned_with_evidence_and_scheduling_is_exact():
    model = _model((4, 3, 3), 5, seed=1)
    heads = _both_heads(model, 2)
    sampler = predictive.sampler_for_model(
        model, heads=heads[0], forecasters=forecasters.learned_forecasters(heads[1])
    )
    rng = np.random.default_rng(0)
    evidence = rng.integers(0, 5, size=(3, 4, 3, 3)).astype(np.int32)
    mask = rng.random((3, 4, 3, 3)) < 0.4
    noise = noise_lib.gumbel_noise((3, 4, 3, 3, 5), 21)
    reference = oracles.ancestral_reference(model, noise, evidence, mask)
    plain = oracles.ancestral_reference(model, noise)
    for method in ("learned", "learned_unshared"):
        result = sampler.sample(noise, method, evidence, mask)
        np.testing.assert_array_equal(result.samples.numpy(), reference, err_msg=method)
    scheduled = sampler.sample_scheduled(noise, "learned", slots=2)
    np.testing.assert_array_equal(scheduled.samples.numpy(), plain)


# ------------------------------------------------------------------- nothing unknown leaks in


def _context(model, previous, n, noise):
    """The context the sampler builds from a previous call on input `previous` `[B, d]`."""
    batch = previous.shape[0]
    logits, h = model(tf.constant(previous.reshape((batch,) + model.image_shape)), training=False)
    return forecasters.ForecastContext(
        tf.constant(previous), logits, h, tf.fill([batch], tf.constant(n, tf.int32)), noise
    )


@pytest.mark.parametrize("image_shape,k,steps", [((4, 3, 1), 3, 3), ((3, 3, 3), 4, 4)])
def test_learned_forecasts_depend_only_on_what_is_valid(image_shape, k, steps):
    """With n valid variables, the forecasts for x_n .. x_{n+T-1} do not change when anything at
    positions >= n - 1 of the previous call's input changes (x_{n-1} was that call's wrong
    forecast, so its h at the pixel after n - 1 is stale), whatever n is within a pixel. They do
    change with the earlier input: the heads use what is valid."""
    model = _model(image_shape, k, seed=2)
    d = model.num_variables
    rng = np.random.default_rng(1)
    noise = noise_lib.gumbel_noise((8,) + image_shape + (k,), 3)
    for heads in _both_heads(model, steps):
        forecaster = forecasters.learned_forecaster(heads)
        changed_by_valid = 0
        for n in range(1, d):
            previous = rng.integers(0, k, size=(8, d)).astype(np.int32)
            window = slice(n, min(n + steps, d))
            base = forecaster(_context(model, previous, n, noise)).numpy()
            invalid = previous.copy()
            invalid[:, n - 1 :] = rng.integers(0, k, size=(8, d - n + 1))
            moved = forecaster(_context(model, invalid, n, noise)).numpy()
            np.testing.assert_array_equal(
                moved[:, window], base[:, window], err_msg=f"{heads.method}, n={n}"
            )
            np.testing.assert_array_equal(moved[:, window.stop :], invalid[:, window.stop :])
            valid = previous.copy()
            valid[:, : n - 1] = rng.integers(0, k, size=(8, n - 1))
            changed_by_valid += np.any(
                forecaster(_context(model, valid, n, noise)).numpy()[:, window] != base[:, window]
            )
        assert changed_by_valid > 0, heads.method


def test_argmax_oracle_allows_only_near_ties():
    scores = np.array([[0.0, 1.0, 1.0 + 1e-7], [2.0, 0.0, 0.0]])
    oracles.assert_argmax_matches([1, 0], scores)  # 1 is within 1e-5 of the best
    oracles.assert_argmax_matches([2, 0], scores)
    with pytest.raises(AssertionError, match="1 of 2 argmaxes wrong"):
        oracles.assert_argmax_matches([1, 1], scores)


@pytest.mark.parametrize("n", [1, 5, 13, 25])
def test_learned_forecast_is_eq_10_at_the_anchor(n):
    """Eq. 10 read from the heads on the whole of h (the sampler evaluates only the anchor)."""
    model = _model((3, 3, 3), 4)
    heads, _ = _both_heads(model, 2)
    rng = np.random.default_rng(2)
    previous = rng.integers(0, 4, size=(2, 27)).astype(np.int32)
    noise = noise_lib.gumbel_noise((2, 3, 3, 3, 4), 8)
    context = _context(model, previous, n, noise)
    logits = heads(context.representation).numpy().reshape(2, 9, 2, 3, 4)
    flat_noise = noise.numpy().reshape(2, 27, 4)
    # The last valid variable n - 1 is channel r = (n - 1) % 3 of pixel a = (n - 1) // 3
    # (n = 5: pixel 1, slot 1).
    pixel, slot = divmod(n - 1, 3)
    window = slice(n, n + 2)
    # The sampler evaluates the heads at the anchor pixels only (another matmul shape than the
    # heads on all of h), so a near-tie may round either way: compared up to 1e-5.
    oracles.assert_argmax_matches(
        forecasters.learned_forecaster(heads)(context).numpy()[:, window],
        logits[:, pixel, :, slot] + flat_noise[:, window],
    )
    no_noise = forecasters.learned_forecaster(heads, reparametrized=False)(context).numpy()
    oracles.assert_argmax_matches(no_noise[:, window], logits[:, pixel, :, slot])


# ------------------------------------------------------------------- eq. 9 and accuracies


def _oracle_head_logits(arm_logits, steps):
    """Head logits that equal the ARM's own conditionals: slot (t, r) of pixel a holds the ARM
    logits of variable a*C + 1 + r + t (zeros past d)."""
    batch, h, w, c, k = arm_logits.shape
    flat = np.concatenate([arm_logits.reshape(batch, -1, k), np.zeros((batch, c + steps, k))], 1)
    out = np.zeros((batch, h * w, steps, c, k), np.float32)
    for a in range(h * w):
        for t in range(steps):
            for r in range(c):
                out[:, a, t, r] = flat[:, a * c + 1 + r + t]
    return tf.constant(out.reshape(batch, h, w, steps, c, k))


def test_forecast_kl_pairs_each_module_with_the_arm_conditional_it_forecasts():
    model = _model((3, 4, 3), 5)
    x = tf.constant(np.random.default_rng(3).integers(0, 5, size=(2, 3, 4, 3)), tf.int32)
    arm_logits, h = model(x)
    exact = _oracle_head_logits(arm_logits.numpy(), 3)
    np.testing.assert_allclose(forecasting.forecast_kl(exact, arm_logits).numpy(), 0.0, atol=1e-5)
    heads, _ = _both_heads(model, 3)
    kl = forecasting.forecast_kl(heads(h), arm_logits).numpy()
    assert kl.shape == (3,) and np.all(kl > 0)
    # The ARM side is detached: no gradient reaches the ARM logits.
    with tf.GradientTape() as tape:
        tape.watch(arm_logits)
        value = tf.reduce_sum(forecasting.forecast_kl(heads(h), arm_logits))
    assert tape.gradient(value, arm_logits) is None


def test_forecast_term_never_trains_the_arm_output_and_unshared_never_trains_the_arm():
    model = _model((3, 3, 1), 3)
    x = tf.constant(np.random.default_rng(4).integers(0, 3, size=(4, 3, 3, 1)), tf.int32)
    shared, unshared = _both_heads(model, 2)
    head_weights = {id(v) for v in model.head.trainable_variables}
    for heads in (shared, unshared):
        term = losses.forecast_loss_term(heads)
        with tf.GradientTape() as tape:
            _, values = losses.compute_loss(model, x, (term,), seed=tf.constant([0, 1]))
        grads = tape.gradient(values["forecast"], model.trainable_variables)
        reached = {
            id(v)
            for v, g in zip(model.trainable_variables, grads)
            if g is not None and float(tf.reduce_max(tf.abs(g))) > 0
        }
        assert not reached & head_weights, heads.method
        if heads.shares_representation:
            assert reached, "the shared representation h is trained jointly (section 2.4)"
        else:
            assert not reached


def test_learned_accuracy_of_exact_forecasts_is_one():
    model = _model((3, 3, 3), 4)
    x = tf.constant(np.random.default_rng(5).integers(0, 4, size=(3, 3, 3, 3)), tf.int32)
    arm_logits, _ = model(x)
    noise = noise_lib.posterior_gumbel_noise(arm_logits, x, 4)
    exact = _oracle_head_logits(arm_logits.numpy(), 4)
    np.testing.assert_array_equal(forecasting.learned_accuracy(exact, x, noise).numpy(), 1.0)
    wrong = forecasting.learned_accuracy(exact, (x + 1) % 4, noise).numpy()
    np.testing.assert_array_equal(wrong, 0.0)


def _copy_previous_arm(k):
    """An ARM that is sure x_i = x_{i-1} (raster-then-channel), x_0 = 0."""

    def arm(x):
        batch = tf.shape(x)[0]
        flat = tf.reshape(x, [batch, -1])
        previous = tf.concat([tf.zeros_like(flat[:, :1]), flat[:, :-1]], axis=1)
        logits = 100.0 * tf.one_hot(previous, k)
        return tf.reshape(logits, tf.concat([tf.shape(x), [k]], 0)), tf.zeros_like(x)

    return arm


def test_fixed_point_accuracy_counts_the_call_after_one_wrong_input():
    k = 3
    x = tf.zeros((16, 4, 4, 1), tf.int32)
    arm = _copy_previous_arm(k)
    arm_logits, _ = arm(x)
    noise = noise_lib.posterior_gumbel_noise(arm_logits, x, 0)
    # The wrong value at j is copied to j + 1 (wrong), then x_{j+1} = 0 is copied on (right).
    accuracy = forecasting.fixed_point_accuracy(arm, x, arm_logits, noise, 3, seed=1).numpy()
    np.testing.assert_array_equal(accuracy, [0.0, 1.0, 1.0])

    def constant(inputs):
        return (arm_logits, None)  # ignores its input: fpi is always right

    np.testing.assert_array_equal(
        forecasting.fixed_point_accuracy(constant, x, arm_logits, noise, 3, seed=1).numpy(), 1.0
    )


def test_forecast_accuracy_names_every_module_and_fpi():
    model = _model((3, 3, 1), 3)
    heads, _ = _both_heads(model, 2)
    x = tf.constant(np.random.default_rng(6).integers(0, 3, size=(4, 3, 3, 1)), tf.int32)
    values = forecasting.forecast_accuracy(model, heads, x, seed=3)
    assert set(values) == {"learned_t0", "learned_t1", "learned", "fpi_t0", "fpi_t1", "fpi"}
    assert all(0.0 <= float(v) <= 1.0 for v in values.values())
    assert set(forecasting.forecast_accuracy(model, None, x, seed=3)) == {"fpi_t0", "fpi"}


def test_heads_reject_a_window_as_long_as_the_image():
    model = _model((2, 2, 1), 2)
    with pytest.raises(ValueError, match="T must be in"):
        heads_lib.heads_for_model(model, 4)
