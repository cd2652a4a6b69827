"""Tests for tfps/sampling/kv_cache.py: the Transformer's `ancestral_cached` method is exact.

Exactness the strong way: for random noise, `ancestral_cached` (key/value caches inside the
sampler's loop) returns the sample of the independent eager ancestral loop
(`oracles.ancestral_reference`), bit for bit, with d ARM calls; with evidence and through the
scheduled loop too. The benchmark reports its row and the "vs ancestral_cached" column.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from launch import benchmark_run
from tfps.models import transformer
from tfps.sampling import kv_cache, predictive
from tfps.sampling import noise as noise_lib
from tfps.serving import loading
from tfps.train import training

import oracles

# name: (constructor options, event shape, K); tiny and without dropout.
MODELS = {
    "text_9": (dict(model_dim=8, num_layers=1, num_heads=2), (9,), 6),
    "seq_5x2": (dict(model_dim=8, num_layers=1, num_heads=1), (5, 2), 3),
    "image_3x3x1": (dict(model_dim=8, num_layers=2, num_heads=2), (3, 3, 1), 3),
}


@functools.lru_cache(maxsize=None)
def _model(name):
    """An untrained Transformer made sensitive to its input: token embeddings scaled up (they
    dominate the normalised sum with the position embeddings) and the output layer too, so the
    logits move by far more than the Gumbel noise when an earlier variable changes, and a sample
    conditioned on a stale or wrong value differs from the ancestral one."""
    options, event_shape, k = MODELS[name]
    keras.utils.set_random_seed(0)
    model = transformer.Transformer(event_shape, k, **options)
    model.embedding.tokens.assign(model.embedding.tokens * 50.0)
    model.out.kernel.assign(model.out.kernel * 10.0)
    return model


def _noise(model, batch, seed):
    return noise_lib.gumbel_noise((batch,) + model.event_shape + (model.num_categories,), seed)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ancestral_cached_is_the_ancestral_sample_with_d_calls(name):
    model = _model(name)
    sampler = predictive.sampler_for_model(model)
    assert predictive.ANCESTRAL_CACHED in sampler.all_methods
    assert predictive.ANCESTRAL_CACHED not in sampler.methods  # a baseline, not exported
    d = model.num_variables
    for seed in (3, 4):
        noise = _noise(model, 4, seed)
        reference = oracles.ancestral_reference(model, noise)
        result = sampler.sample(noise, "ancestral_cached")
        np.testing.assert_array_equal(result.samples.numpy(), reference, err_msg=f"seed {seed}")
        assert result.samples.shape == (4,) + model.event_shape
        assert int(result.arm_calls) == d
        np.testing.assert_array_equal(result.arm_calls_per_example, [d] * 4)
        np.testing.assert_array_equal(
            tf.reshape(result.accepted_at, (4, d)), np.tile(np.arange(1, d + 1), (4, 1))
        )
        np.testing.assert_array_equal(kv_cache.cached_ancestral_sample(model, noise), reference)


@pytest.mark.parametrize("name", ["text_9", "seq_5x2"])
def test_ancestral_cached_keeps_the_evidence_also_when_scheduled(name):
    """Observed runs (a whole prefix of one example, the end of another) make a call compute
    several positions; refilled slots keep their caches."""
    model = _model(name)
    sampler = predictive.sampler_for_model(model)
    shape, k = (5,) + model.event_shape, model.num_categories
    rng = np.random.default_rng(0)
    evidence = rng.integers(0, k, shape).astype(np.int32)
    mask = rng.random(shape) < 0.3
    flat = mask.reshape(5, -1)
    flat[1, :4] = True
    flat[2, -3:] = True
    flat[3, :] = True  # nothing left to sample
    noise = _noise(model, 5, 21)
    reference = oracles.ancestral_reference(model, noise, evidence, mask)
    result = sampler.sample(noise, "ancestral_cached", evidence, mask)
    np.testing.assert_array_equal(result.samples, reference)
    free = (~flat).sum(axis=1)
    assert int(result.arm_calls) == free.max()
    np.testing.assert_array_equal(result.arm_calls_per_example, np.maximum(free, 1))
    for slots in (1, 2):
        scheduled = sampler.sample_scheduled(noise, "ancestral_cached", slots, evidence, mask)
        np.testing.assert_array_equal(scheduled.samples, reference, err_msg=f"slots {slots}")


def test_ancestral_cached_compiles_with_xla():
    model = _model("text_9")
    sampler = predictive.sampler_for_model(model, jit_compile=True)
    noise = _noise(model, 3, 8)
    np.testing.assert_array_equal(
        sampler.sample(noise, "ancestral_cached").samples, oracles.ancestral_reference(model, noise)
    )


def test_the_caches_equal_the_full_network_at_every_valid_position():
    """After a call, the logits and h are the full call's at every valid position, `needed`
    included; positions after the first changed one are stale until they are needed."""
    model = _model("seq_5x2")
    arm = kv_cache.KeyValueArm(model)
    assert isinstance(model.cached_ancestral_arm(), kv_cache.KeyValueArm)
    image = (2,) + arm.image_shape
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, image).astype(np.int32)
    d = model.num_variables
    logits, h, cache = arm.initial(tf.constant(x), tf.constant([d - 1, 3]))
    full_logits, full_h = predictive.arm_from_model(model)(tf.constant(x))
    np.testing.assert_allclose(logits, full_logits, atol=1e-5)
    np.testing.assert_allclose(h, full_h, atol=1e-5)
    np.testing.assert_array_equal(cache[-1], [d, d])  # example 1 moves on while 0 needs more
    y = x.copy()
    y.reshape(2, -1)[0, 2:] = (x.reshape(2, -1)[0, 2:] + 1) % 3  # example 0 changes from 2 on
    logits, _, cache = arm.update(tf.constant(y), tf.constant([2, d]), tf.constant([6, 5]), cache)
    full_logits = predictive.arm_from_model(model)(tf.constant(y))[0].numpy().reshape(2, d, 3)
    logits = logits.numpy().reshape(2, d, 3)
    np.testing.assert_allclose(logits[0, :7], full_logits[0, :7], atol=1e-5)
    np.testing.assert_allclose(logits[1], full_logits[1], atol=1e-5)
    np.testing.assert_array_equal(cache[-1], [7, d])
    assert np.abs(logits[0, 7:] - full_logits[0, 7:]).max() > 1e-3  # stale, never read


def test_the_benchmark_reports_the_ancestral_cached_row(tmp_path):
    """`launch/benchmark.py`'s path (`launch.benchmark_run`) on a tiny Transformer run."""
    logdir = str(tmp_path / "run")
    config = training.TrainConfig(
        dataset="digits", arch="transformer", filters=8, num_heads=2, num_layers=1,
        batch_size=8, steps=2, log_every=2, eval_every=2, checkpoint_every=2, eval_batches=1,
        seed=0, dropout_rate=0.0,
    )  # fmt: skip
    training.train(config, logdir)
    options = benchmark_run.Options(
        methods=["ancestral_cached", "fpi"],
        batch_sizes=(2,),
        num_seeds=1,
        tfp_peer=False,
        scheduled_samples=0,
        output=str(tmp_path / "bench"),
        picture_samples=2,
    )
    table = benchmark_run.run_benchmark(loading.load(logdir), logdir, options, log=lambda _: None)
    assert "| ancestral_cached |" in table and "vs ancestral_cached (B=2)" in table
    assert "| ancestral |" in table and "| fpi |" in table
