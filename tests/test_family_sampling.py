"""A family of orderings whose first ordering is not the raster order samples in that ordering.

`model(x)` of a family (`tfps.models.farm_made.OrderedMADE`, `farm_pixelcnn.OrderedPixelCNN`) is
autoregressive in `orderings[0]`; every sampler of it (`tfps.sampler_for_model`, `tfps.load`,
`launch.sample`, `launch.benchmark`, an export) must return, for every method, the ancestral sample
in that ordering. The oracle is an eager numpy loop over the model's logits in ordering 0, one call
per generation step (`oracles.ancestral_in_ordering`); it shares no code with the samplers.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps
from tfps.evaluation import benchmarking
from tfps.models import farm_made, farm_pixelcnn
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive
from tfps.serving import loading
from tfps.train import training

import oracles
from launchers import launch_here
from tiny_models import farm_config

SHAPE, K = (4, 4, 1), 3
FAMILY = ("br_cols", "tl_rows")


def _sharpened(model, factor=6.0):
    """The model with every weight scaled, so its logits outweigh the Gumbel noise (with small
    random weights the noise alone decides most argmaxes and a wrong order can go unseen)."""
    for w in model.weights:
        w.assign(w * factor)
    return model


def _made(seed=0):
    keras.utils.set_random_seed(seed)
    return _sharpened(farm_made.OrderedMADE(SHAPE, K, orderings=FAMILY, hidden_units=24))


def oracle(model, noise, evidence=None, mask=None):
    """The ancestral sample in `model.orderings[0]`, the order `model(x)` is autoregressive in
    (`oracles.ancestral_in_ordering`: an eager loop over the model's logits)."""
    return oracles.ancestral_in_ordering(model, 0, noise, evidence, mask)


@pytest.fixture(scope="module")
def made():
    return _made()


@pytest.fixture(scope="module")
def noise():
    return noise_lib.gumbel_noise((3,) + SHAPE + (K,), 7)


def test_the_fixture_samples_otherwise_in_raster_order(made, noise):
    """The fixture can tell the orders apart: sampled in raster order, the logits give another
    image than in ordering 0 (so the tests below would fail on a raster-order sampler)."""
    assert not made.orderings[0].is_natural()
    raster = np.zeros((3, 16), np.int32)
    flat_noise = np.asarray(noise).reshape(3, 16, K)
    for j in range(16):
        logits = np.asarray(made(raster.reshape((3,) + SHAPE))[0]).reshape(3, 16, K)
        raster[:, j] = np.argmax(logits[:, j] + flat_noise[:, j], axis=-1)
    assert not np.array_equal(raster.reshape((3,) + SHAPE), oracle(made, noise))


def test_every_method_samples_the_first_ordering(made, noise):
    sampler = tfps.sampler_for_model(made)
    expected = oracle(made, noise)
    assert sampler.ordering == made.orderings[0]
    for method in sampler.all_methods:
        result = sampler.sample(noise, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
        assert result.samples.shape == (3,) + SHAPE
        # accepted_at in x layout: the variable generated first in ordering 0 is final after
        # the first call, whatever the method.
        first = np.unravel_index(made.orderings[0].permutation[0], SHAPE)
        assert (result.accepted_at.numpy()[(slice(None),) + first] == 1).all(), method
    ancestral = sampler.sample(noise, "ancestral").accepted_at.numpy().reshape(3, 16)
    rank = np.argsort(made.orderings[0].permutation)  # step at which each position is generated
    np.testing.assert_array_equal(ancestral, np.broadcast_to(rank + 1, (3, 16)))


def test_evidence_schedules_and_budgets_keep_the_first_ordering(made, noise):
    sampler = tfps.sampler_for_model(made)
    rng = np.random.default_rng(0)
    evidence = rng.integers(0, K, (3,) + SHAPE).astype(np.int32)
    mask = rng.random((3,) + SHAPE) < 0.4
    expected = oracle(made, noise, evidence, mask)
    for method in ("ancestral", "fpi"):
        got = sampler.sample(noise, method, evidence, mask).samples.numpy()
        np.testing.assert_array_equal(got, expected, err_msg=method)
    scheduled = sampler.sample_scheduled(noise, "fpi", slots=2).samples.numpy()
    np.testing.assert_array_equal(scheduled, oracle(made, noise))
    # Within a budget of 3 calls, ancestral sampling has the first 3 variables of ordering 0.
    result, prefix = sampler.sample_within_budget(noise, "ancestral", max_calls=3)
    np.testing.assert_array_equal(prefix.numpy(), [3, 3, 3])
    first3 = made.orderings[0].permutation[:3]
    got = result.samples.numpy().reshape(3, 16)
    np.testing.assert_array_equal(got[:, first3], oracle(made, noise).reshape(3, 16)[:, first3])
    rest = np.setdiff1d(np.arange(16), first3)
    assert (got[:, rest] == 0).all()


def test_the_pixelcnn_family_samples_its_first_ordering_too(noise):
    keras.utils.set_random_seed(1)
    model = _sharpened(
        farm_pixelcnn.OrderedPixelCNN(SHAPE, K, orderings=FAMILY, filters=8, num_layers=1), 3.0
    )
    sampler = tfps.sampler_for_model(model, jit_compile=True)
    expected = oracle(model, noise)
    for method in ("ancestral", "fpi"):
        got = sampler.sample(noise, method).samples.numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"{method} (XLA)")


def test_learned_heads_and_incremental_calls_are_refused_in_another_ordering(made):
    with pytest.raises(ValueError, match="first ordering is the natural one"):
        predictive.sampler_for_model(made, incremental=True)
    with pytest.raises(ValueError, match="first ordering is the natural one"):
        predictive.sampler_for_model(made, heads={"method": "learned"})


# ---------------------------------------------------------------- a trained run, end to end
@pytest.fixture(scope="module")
def family_run(tmp_path_factory):
    """A 2-step farm_made run on 8x8 digits whose first ordering is br_cols, with its weights
    sharpened in the checkpoint (a 2-step model is near uniform: the noise alone would decide),
    and its export by `tfps.export`."""
    logdir = str(tmp_path_factory.mktemp("family") / "run")
    config = farm_config(orderings=",".join(FAMILY), steps=2, log_every=2, eval_every=2,
                         checkpoint_every=2)  # fmt: skip
    training.train(config, logdir)
    model, recorded = training.load_trained(logdir)
    _sharpened(model, 4.0)
    step = tf.Variable(recorded["step"], dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(step=step, model=model)
    directory = os.path.dirname(recorded["checkpoint"])
    manager = tf.train.CheckpointManager(checkpoint, directory, 5)
    manager.save(checkpoint_number=recorded["step"] + 1)
    exported = tfps.export(logdir, str(tmp_path_factory.mktemp("exported")), name="family")
    return logdir, exported


def _trained(logdir):
    model, _ = training.load_trained(logdir)
    return model


def _trained_noise(model, seed=3, batch=2):
    shape = tuple(model.event_shape)
    return noise_lib.gumbel_noise((batch,) + shape + (int(model.num_categories),), seed)


def test_a_loaded_run_samples_its_first_ordering(family_run):
    logdir, _ = family_run
    loaded = tfps.load(logdir)
    model = _trained(logdir)
    assert model.orderings[0].name == "br_cols"
    noise = _trained_noise(model)
    expected = oracle(model, noise)
    for method in loaded.sampler.methods:
        got = loaded.sampler.sample(noise, method).samples.numpy()
        np.testing.assert_array_equal(got, expected, err_msg=method)


def test_launch_sample_and_benchmark_sample_the_first_ordering(family_run, tmp_path, monkeypatch):
    logdir, _ = family_run
    model = _trained(logdir)
    expected = oracle(model, _trained_noise(model, seed=0, batch=2))
    for method in ("ancestral", "fpi"):
        out = tmp_path / method
        proc = launch_here(
            "launch.sample", f"--model={logdir}", f"--method={method}", "--num_samples=2",
            "--seed=0", f"--output_dir={out}",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        np.testing.assert_array_equal(np.load(out / f"samples_{method}.npy"), expected, method)
    # launch.benchmark: every method's kept results against the oracle on the same noise.
    seen = []
    real = benchmarking.time_sampler

    def recording(sampler, method, batch_size, seeds, results=None, *args, **kwargs):
        kept = [] if results is None else results
        out = real(sampler, method, batch_size, seeds, kept, *args, **kwargs)
        draw, _ = benchmarking.batch_inputs(sampler, batch_size)
        seen.extend((method, draw(seed)[0], r.samples.numpy()) for seed, r in zip(seeds, kept))
        return out

    monkeypatch.setattr(benchmarking, "time_sampler", recording)
    proc = launch_here(
        "launch.benchmark", f"--model={logdir}", "--methods=fpi,last", "--batch_sizes=2",
        "--num_seeds=1", "--tfp_peer=false", "--scheduled_samples=0", "--picture_samples=1",
        f"--output={tmp_path / 'bench'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {m for m, _, _ in seen} == {"ancestral", "fpi", "last"}
    for method, noise, samples in seen:
        np.testing.assert_array_equal(samples, oracle(model, noise), err_msg=method)


def test_the_export_samples_the_first_ordering_and_names_it(family_run):
    logdir, exported = family_run
    model = _trained(logdir)
    served = tfps.load_exported(exported)
    metadata = served.metadata
    assert metadata["sampling_order"]["name"] == "br_cols"
    assert metadata["sampling_order"]["permutation"] == model.orderings[0].permutation.tolist()
    assert "br_cols" in metadata["ordering"]
    noise = _trained_noise(model, seed=5)
    expected = oracle(model, noise)
    for method in served.methods:
        got = np.asarray(served.sample(noise, method).samples)
        np.testing.assert_array_equal(got, expected, err_msg=method)
    loaded = loading.load(exported)  # tfps.load of an export: the same signatures
    np.testing.assert_array_equal(np.asarray(loaded.sampler.sample(noise, "fpi").samples), expected)
    with open(os.path.join(exported, "assets", "tfps_metadata.json")) as f:
        assert json.load(f)["sampling_order"]["name"] == "br_cols"
