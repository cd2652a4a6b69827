"""Tests for batch scheduling (tfps/sampling/slots.py, `PredictiveSampler.sample_scheduled`).

Exactness the strong way: every per-sample output of the scheduled loop equals that of the
unscheduled sampler on the same noise (all samples start at call 1 there), and each sample's calls
equal those of sampling its noise alone at batch size 1, because a refilled slot starts afresh.
Samples also equal the eager ancestral oracle and are fixed points of x = g(x, eps) (eq. 8).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfps.evaluation import scheduling_report
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive
from tfps.sampling import slots as slots_lib

import oracles
from tiny_models import tiny_model as _model
from tiny_models import trained_model

FIELDS = (
    "samples",
    "arm_calls_per_example",
    "converged_at",
    "accepted_at",
    "forecast_mistakes",
    "forecasts_checked",
)


def _forecast_ones(context):
    """Never zeros: shows that a refilled slot's first call ignores the forecaster."""
    return tf.ones_like(context.previous_output)


def _forecast_from_representation(context):
    """A stand-in for a learned head (C = 1): reads h, which must be reset with the slot."""
    h = tf.reduce_mean(context.representation, axis=-1)
    return tf.reshape(tf.cast(h > 0, tf.int32), tf.shape(context.previous_output))


EXTRA = {"ones": _forecast_ones, "from_h": _forecast_from_representation}


@pytest.fixture(scope="module")
def binary():
    model = _model((4, 4, 1), 2)
    return model, predictive.sampler_for_model(model, forecasters=EXTRA)


@pytest.mark.parametrize("num_samples,slots", [(7, 3), (2, 5)])
def test_each_scheduled_sample_is_its_unscheduled_and_batch_one_sample(binary, num_samples, slots):
    model, sampler = binary
    noise = noise_lib.gumbel_noise((num_samples, 4, 4, 1, 2), 13)
    for method in sampler.methods:
        scheduled = sampler.sample_scheduled(noise, method, slots=slots)
        plain = sampler.sample(noise, method)
        for field in FIELDS:
            np.testing.assert_array_equal(
                getattr(scheduled, field), getattr(plain, field), err_msg=f"{method}: {field}"
            )
        alone = [
            int(sampler.sample(noise[k : k + 1], method).arm_calls) for k in range(num_samples)
        ]
        np.testing.assert_array_equal(scheduled.arm_calls_per_example, alone, err_msg=method)
        calls, work = int(scheduled.arm_calls), sum(alone)
        # List scheduling: B busy slots until the queue is empty, then at most one sample's calls.
        b = min(slots, num_samples)
        assert math.ceil(work / b) <= calls <= math.ceil(work / b) + max(alone), method
        if slots >= num_samples:
            assert calls == int(plain.arm_calls), "with a slot per sample nothing is scheduled"


def test_scheduled_samples_equal_the_ancestral_reference_and_are_fixed_points():
    model = trained_model((4, 3, 3), 5, steps=30)
    sampler = predictive.sampler_for_model(model)
    noise = noise_lib.gumbel_noise((5, 4, 3, 3, 5), 4)
    reference = oracles.ancestral_reference(model, noise)
    np.testing.assert_array_equal(oracles.reparametrized_output(model, reference, noise), reference)
    for method in ("ancestral", "fpi", "last"):
        result = sampler.sample_scheduled(noise, method, slots=2)
        np.testing.assert_array_equal(result.samples, reference, err_msg=method)
        accepted = result.accepted_at.numpy().reshape(5, -1)
        assert np.all(accepted.max(axis=1) == result.arm_calls_per_example.numpy())
        assert np.all(
            (1 <= result.converged_at.numpy()) & (result.converged_at <= result.accepted_at)
        )


def test_one_slow_sample_no_longer_holds_up_the_batch(binary):
    _, sampler = binary
    # Noise that decides every variable: sample 0 is all ones (16 calls with forecast zeros), the
    # others all zeros (1 call each).
    big = np.zeros((8, 4, 4, 1, 2), np.float32)
    big[0, ..., 1] = 50.0
    big[1:, ..., 0] = 50.0
    scheduled = sampler.sample_scheduled(big, "zeros", slots=2)
    np.testing.assert_array_equal(scheduled.arm_calls_per_example, [16] + [1] * 7)
    plain = sum(int(sampler.sample(big[i : i + 2], "zeros").arm_calls) for i in range(0, 8, 2))
    assert plain == 16 + 3
    # Slot 0 works on sample 0 while slot 1 finishes the other seven.
    assert int(scheduled.arm_calls) == 16 < plain


def test_evidence_follows_its_sample_into_the_slot(binary):
    model, sampler = binary
    rng = np.random.default_rng(1)
    evidence = rng.integers(0, 2, size=(5, 4, 4, 1)).astype(np.int32)
    mask = rng.random((5, 4, 4, 1)) < 0.5
    noise = noise_lib.gumbel_noise((5, 4, 4, 1, 2), 6)
    reference = oracles.ancestral_reference(model, noise, evidence, mask)
    for method in ("fpi", "zeros"):
        scheduled = sampler.sample_scheduled(
            noise, method, slots=2, evidence=evidence, evidence_mask=mask
        )
        plain = sampler.sample(noise, method, evidence, mask)
        np.testing.assert_array_equal(scheduled.samples, reference)
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(scheduled, field), getattr(plain, field))


def test_seeded_paths_give_the_samples_of_the_unscheduled_sampler(binary):
    _, sampler = binary
    expected = sampler.sample_from_seed(21, 6, "fpi").samples.numpy()
    np.testing.assert_array_equal(
        sampler.sample_scheduled_from_seed(21, 6, 4, "fpi").samples, expected
    )
    many = sampler.sample_many_function("fpi")(
        noise_lib.as_seed(21), tf.constant(6), tf.constant(4)
    )
    np.testing.assert_array_equal(many.samples, expected)
    assert many.samples.shape == (6, 4, 4, 1)


def test_xla_compiled_scheduled_loop_is_exact(binary):
    model, sampler = binary
    noise = noise_lib.gumbel_noise((5, 4, 4, 1, 2), 9)
    xla = predictive.sampler_for_model(model, jit_compile=True).sample_scheduled(
        noise, "fpi", slots=2
    )
    plain = sampler.sample_scheduled(noise, "fpi", slots=2)
    for field in FIELDS + ("arm_calls",):
        np.testing.assert_array_equal(getattr(xla, field), getattr(plain, field), err_msg=field)


def test_refill_hands_out_the_queue_in_slot_order():
    sample, refilled, pending = slots_lib.refill_slots(
        tf.constant([0, 1, 2, 3]),
        tf.constant([True, False, True, True]),
        tf.constant(4),
        tf.constant(6),
    )
    np.testing.assert_array_equal(sample, [4, 1, 5, 6])  # slot 3: queue empty -> N marks empty
    np.testing.assert_array_equal(refilled, [True, False, True, False])
    assert int(pending) == 6


def test_calls_per_sample_report(binary):
    _, sampler = binary
    report = scheduling_report.calls_per_sample_report(sampler, 6, 4, "zeros", seed=2)
    assert report["samples_agree"]
    assert report["batch1_calls_per_sample"] == report["scheduled_mean_calls_per_example"]
    assert report["scheduled_calls_per_sample"] <= report["unscheduled_calls_per_sample"]
    assert report["scheduled_over_ideal"] >= 1.0
    assert all(
        report[f"{k}_seconds_per_sample"] > 0 for k in ("batch1", "unscheduled", "scheduled")
    )
    assert "B=4" in scheduling_report.format_report(report)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda s: s.sample_scheduled(np.zeros((3, 4, 4, 1, 2), np.float32), "fpi", 0),
            "slots must be an integer >= 1",
        ),
        (
            lambda s: s.sample_scheduled(tf.zeros((3, 4, 4, 1, 2)), "fpi", slots=2.5),
            "slots must be an integer",
        ),
        (
            lambda s: s.sample_scheduled(tf.zeros((3, 4, 4, 1, 2)), "beam", slots=2),
            "unknown sampling method",
        ),
        (
            lambda s: s.sample_scheduled(tf.zeros((0, 4, 4, 1, 2)), "fpi", slots=2),
            "batch size >= 1",
        ),
        (
            lambda s: s.sample_scheduled(tf.zeros((3, 4, 4, 1, 3)), "fpi", slots=2),
            "noise must have shape",
        ),
        (
            lambda s: s.sample_scheduled(
                tf.zeros((3, 4, 4, 1, 2)),
                "fpi",
                2,
                np.zeros((2, 4, 4, 1), np.int32),
                np.ones((2, 4, 4, 1), bool),
            ),
            "evidence and evidence_mask must have shape",
        ),
        (
            lambda s: s.sample_scheduled_from_seed(0, 0, 2, "fpi"),
            "num_samples must be an integer >= 1",
        ),
        (lambda s: s.sample_scheduled_from_seed(0, 4, -1, "fpi"), "slots must be an integer >= 1"),
        (
            lambda s: scheduling_report.calls_per_sample_report(s, 4, 0),
            "slots must be an integer >= 1",
        ),
    ],
)
def test_bad_input_gets_one_clear_error(binary, call, match):
    with pytest.raises(ValueError, match=match):
        call(binary[1])
