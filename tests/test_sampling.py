"""Tests for tfps/sampling/predictive.py: every method is exact, the statistics are right, inputs
are checked.

Exactness the strong way: for random noise, each method returns the sample of an independent
eager ancestral loop (`oracles.ancestral_reference`), and that sample is a fixed point of
x = argmax(logits(x) + noise) (eq. 8 of Wiggers & Hoogeboom, ICML 2020).
"""

import itertools

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive, protocol

import oracles
from tiny_models import tiny_model as _model
from tiny_models import trained_model as _trained_model

CASES = {
    "binary_c1": lambda: _model((5, 4, 1), 2),
    "k256_c1": lambda: _model((3, 3, 1), 256),
    "binary_c3": lambda: _model((3, 3, 3), 2),
    "k256_c3": lambda: _model((2, 3, 3), 256),
    "trained_binary_c1": lambda: _trained_model((6, 5, 1), 2),
    "trained_k5_c3": lambda: _trained_model((4, 3, 3), 5),
    "three_scales_binary_c1": lambda: _model((4, 4, 1), 2, num_scales=3),
    "trained_two_scales_binary_c1": lambda: _trained_model((4, 4, 1), 2, steps=30, num_scales=2),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def model(request):
    return CASES[request.param]()


def test_every_method_equals_the_ancestral_reference_and_is_a_fixed_point(model):
    sampler = predictive.sampler_for_model(model)
    d = model.num_variables
    for seed in range(3):
        noise = noise_lib.gumbel_noise((3,) + model.image_shape + (model.num_categories,), seed)
        reference = oracles.ancestral_reference(model, noise)
        np.testing.assert_array_equal(
            oracles.reparametrized_output(model, reference, noise), reference
        )
        for method in sampler.methods:
            result = sampler.sample(noise, method)
            np.testing.assert_array_equal(
                result.samples.numpy(), reference, err_msg=f"method {method}, seed {seed}"
            )
            calls = int(result.arm_calls)
            per_example = result.arm_calls_per_example.numpy()
            assert 1 <= calls <= d and calls == per_example.max()
            if method == "ancestral":
                assert calls == d and np.all(per_example == d)
                np.testing.assert_array_equal(
                    result.accepted_at.numpy().reshape(3, d), np.tile(np.arange(1, d + 1), (3, 1))
                )
            accepted = result.accepted_at.numpy().reshape(3, d)
            converged = result.converged_at.numpy().reshape(3, d)
            assert np.all(np.diff(accepted, axis=1) >= 0), "the valid prefix only grows"
            assert np.all(accepted.max(axis=1) == per_example)
            assert np.all((1 <= converged) & (converged <= accepted))


def test_fpi_needs_few_calls_on_a_predictable_model():
    model = _trained_model((6, 5, 1), 2)
    sampler = predictive.sampler_for_model(model)
    noise = noise_lib.gumbel_noise((4, 6, 5, 1, 2), 11)
    fpi = sampler.sample(noise, "fpi")
    assert int(fpi.arm_calls) < model.num_variables // 2


def test_first_call_forecasts_zeros_so_fpi_and_zeros_agree_on_call_one():
    model = _model((3, 3, 1), 3)
    sampler = predictive.sampler_for_model(model)
    noise = noise_lib.gumbel_noise((2, 3, 3, 1, 3), 5)
    x0 = np.zeros((2, 3, 3, 1), np.int32)
    first_output = oracles.reparametrized_output(model, x0, noise).reshape(2, -1)
    for method in ("fpi", "zeros", "last"):
        result = sampler.sample(noise, method)
        accepted_first = result.accepted_at.numpy().reshape(2, -1) == 1
        samples = result.samples.numpy().reshape(2, -1)
        # Everything accepted on call 1 is the output of the ARM on the all-zero forecast.
        np.testing.assert_array_equal(samples[accepted_first], first_output[accepted_first])


def test_forecast_mistakes_mark_where_the_forecast_disagreed():
    model = _model((4, 4, 1), 2)
    sampler = predictive.sampler_for_model(model)
    noise = noise_lib.gumbel_noise((2, 4, 4, 1, 2), 7)
    zeros = sampler.sample(noise, "zeros")
    mistakes = zeros.forecast_mistakes.numpy().reshape(2, -1)
    samples = zeros.samples.numpy().reshape(2, -1)
    # With forecast zeros, a forecast is wrong exactly where the sampled value is not 0.
    np.testing.assert_array_equal(mistakes, samples != 0)
    np.testing.assert_array_equal(zeros.forecasts_checked.numpy(), [16, 16])
    ancestral = sampler.sample(noise, "ancestral")
    assert not ancestral.forecast_mistakes.numpy().any()
    assert np.all(ancestral.forecasts_checked.numpy() == 0)


def test_calls_per_example_count_only_until_each_example_is_done():
    model = _model((4, 4, 1), 2)
    sampler = predictive.sampler_for_model(model)
    noise = noise_lib.gumbel_noise((6, 4, 4, 1, 2), 8)
    batch = sampler.sample(noise, "zeros")
    for b in range(6):
        alone = sampler.sample(noise[b : b + 1], "zeros")
        assert int(alone.arm_calls) == batch.arm_calls_per_example.numpy()[b]
        np.testing.assert_array_equal(alone.samples.numpy()[0], batch.samples.numpy()[b])


def test_fpi_samples_match_the_exact_joint_distribution():
    """Chi-square test of fpi samples against the enumerated joint of a 2x2x1 binary ARM."""
    model = _model((2, 2, 1), 2, seed=4, filters=6)
    states = np.array(list(itertools.product([0, 1], repeat=4)), np.int32).reshape(16, 2, 2, 1)
    probs = np.exp(protocol.log_prob(model(states)[0], states).numpy().astype(np.float64))
    assert abs(probs.sum() - 1) < 1e-5
    probs /= probs.sum()  # In float64: chisquare refuses expected counts whose sum is off by 3e-8.
    n = 8000
    result = predictive.sampler_for_model(model).sample_from_seed(1234, n, "fpi")
    codes = (result.samples.numpy().reshape(n, 4) * [8, 4, 2, 1]).sum(axis=1)
    counts = np.bincount(codes, minlength=16)
    _, p_value = scipy.stats.chisquare(counts, probs * n)
    assert p_value > 1e-3, (counts, probs * n)


@pytest.mark.parametrize("method", ["ancestral", "zeros", "last", "fpi", "fpi_argmax"])
def test_evidence_is_kept_and_the_rest_is_the_conditional_ancestral_sample(method):
    model = _trained_model((4, 3, 3), 5, steps=20)
    sampler = predictive.sampler_for_model(model)
    rng = np.random.default_rng(0)
    evidence = rng.integers(0, 5, size=(3, 4, 3, 3)).astype(np.int32)
    mask = rng.random((3, 4, 3, 3)) < 0.4
    mask[0, :2] = True  # an observed top half (inpainting the bottom)
    noise = noise_lib.gumbel_noise((3, 4, 3, 3, 5), 21)
    reference = oracles.ancestral_reference(model, noise, evidence, mask)
    result = sampler.sample(noise, method, evidence, mask)
    samples = result.samples.numpy()
    np.testing.assert_array_equal(samples[mask], evidence[mask])
    np.testing.assert_array_equal(samples, reference)
    # The fixed-point form: x = where(mask, evidence, g(x, noise)).
    np.testing.assert_array_equal(
        np.where(mask, evidence, oracles.reparametrized_output(model, samples, noise)), samples
    )
    assert int(result.arm_calls) <= int((~mask).reshape(3, -1).sum(axis=1).max())


def test_sample_from_seed_is_reproducible():
    model = _model((3, 3, 1), 4)
    sampler = predictive.sampler_for_model(model)
    a = sampler.sample_from_seed(7, 2, "fpi").samples.numpy()
    b = sampler.sample_from_seed(7, 2, "ancestral").samples.numpy()
    c = sampler.sample_from_seed(8, 2, "fpi").samples.numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_xla_compiled_loop_is_exact():
    model = _model((3, 4, 1), 3)
    noise = noise_lib.gumbel_noise((2, 3, 4, 1, 3), 9)
    plain = predictive.sampler_for_model(model).sample(noise, "fpi")
    xla = predictive.sampler_for_model(model, jit_compile=True).sample(noise, "fpi")
    np.testing.assert_array_equal(xla.samples, plain.samples)
    assert int(xla.arm_calls) == int(plain.arm_calls)


@pytest.fixture(scope="module")
def small_sampler():
    return predictive.sampler_for_model(_model((3, 3, 1), 2))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda s: s.sample(tf.zeros((1, 3, 3, 1, 2)), "beam"), "unknown sampling method 'beam'"),
        (
            lambda s: s.sample(tf.zeros((1, 3, 3, 1, 3)), "fpi"),
            r"noise must have shape \[batch, 3, 3, 1, 2\]",
        ),
        (lambda s: s.sample(tf.zeros((3, 3, 1, 2)), "fpi"), "noise must have shape"),
        (lambda s: s.sample(tf.zeros((1, 3, 3, 1, 2), tf.int32), "fpi"), "noise must be a float"),
        (lambda s: s.sample(tf.zeros((0, 3, 3, 1, 2)), "fpi"), "batch size >= 1"),
        (lambda s: s.sample_from_seed(0, 0, "fpi"), "batch_size must be >= 1"),
        (
            lambda s: s.sample(
                tf.zeros((1, 3, 3, 1, 2)), "fpi", np.zeros((1, 3, 3, 1), np.int32), None
            ),
            "given together",
        ),
        (
            lambda s: s.sample(
                tf.zeros((1, 3, 3, 1, 2)),
                "fpi",
                np.full((1, 3, 3, 1), 2),
                np.ones((1, 3, 3, 1), bool),
            ),
            r"evidence values must lie in \[0, 2\)",
        ),
        (
            lambda s: s.sample(
                tf.zeros((1, 3, 3, 1, 2)),
                "fpi",
                np.zeros((2, 3, 3, 1), np.int32),
                np.ones((2, 3, 3, 1), bool),
            ),
            "evidence and evidence_mask must have shape",
        ),
    ],
)
def test_bad_input_gets_one_clear_error(small_sampler, call, match):
    with pytest.raises(ValueError, match=match):
        call(small_sampler)
