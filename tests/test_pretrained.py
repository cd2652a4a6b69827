"""The demo's shipped runs (pretrained/): what their presets train, loadable, and exact.

`make demo` samples, exports and benchmarks these runs instead of training them (launch/demo.sh);
these tests check that each is the run its preset makes (the same recorded config), that it loads
as any run does, and that predictive sampling from it returns the ancestral sample.
"""

import importlib.util
import json
import os

import numpy as np
import pytest

from tfps.sampling import noise as noise_lib
from tfps.serving import loading
from tfps.train import config as config_lib
from tfps.train import rundir

from launchers import REPO

PRETRAINED = os.path.join(REPO, "pretrained")
NAMES = ("digits", "digits28_binary")


def _preset(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return config_lib.from_config_dict(module.get_config(), config_lib.ARM)


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_run_is_the_run_of_its_preset(name):
    logdir = os.path.join(PRETRAINED, name)
    recorded = config_lib.TrainConfig.from_dict(rundir.read_config(logdir)["train"])
    assert recorded == _preset(name)
    with open(os.path.join(logdir, rundir.METRICS_FILE)) as f:
        metrics = json.load(f)
    assert metrics["step"] == recorded.steps and metrics["dataset"] == name
    assert metrics["test_bpd"] < metrics["uniform_bpd"] / 2  # trained, not initial weights
    (prefix,) = {
        p.rsplit(".", 1)[0] for p in os.listdir(os.path.join(logdir, "checkpoints")) if "ckpt-" in p
    }
    assert prefix == f"ckpt-{recorded.steps}"  # the final checkpoint only


@pytest.mark.usefixtures("graph_optimizations")
def test_the_shipped_digits_run_samples_the_ancestral_sample_with_every_method():
    run = loading.load(os.path.join(PRETRAINED, "digits"))
    assert run.step == 1500 and not run.is_export
    noise = noise_lib.gumbel_noise((2, 8, 8, 1, 17), 0)
    reference = run.sampler.sample(noise, "ancestral")
    for method in ("zeros", "last", "fpi", "fpi_argmax"):
        result = run.sampler.sample(noise, method)
        np.testing.assert_array_equal(result.samples, reference.samples, err_msg=method)
        assert int(result.arm_calls) < int(reference.arm_calls)


def test_the_demo_copies_the_shipped_runs():
    with open(os.path.join(REPO, "launch", "demo.sh")) as f:
        script = f.read()
    assert 'cp -r "pretrained/$name" "$RUNS/$name"' in script
    assert "for name in " + " ".join(NAMES) + "; do" in script


SHIPPED_EXPORT = os.path.join(REPO, "exported", "digits", "1")


def test_the_shipped_export_serves_todays_contract_and_refuses_non_finite_noise():
    """exported/digits/1 (what the README tells users to serve) has every signature of today's
    contract with today's inputs, is the export of pretrained/digits, and refuses NaN and
    infinite noise in every method, through the SavedModel alone (TensorFlow, no tfps)."""
    import tensorflow as tf  # noqa: PLC0415 - the other tests here need no TensorFlow

    from tfps.serving import contract  # noqa: PLC0415

    with open(os.path.join(SHIPPED_EXPORT, "assets", "tfps_metadata.json")) as f:
        metadata = json.load(f)
    with open(os.path.join(PRETRAINED, "digits", rundir.METRICS_FILE)) as f:
        trained = json.load(f)
    assert metadata["training"]["step"] == trained["step"]
    assert metadata["training"]["test_bpd"] == pytest.approx(trained["test_bpd"], rel=1e-9)
    shape, k, methods = (
        tuple(metadata["event_shape"]),
        metadata["num_categories"],
        metadata["methods"],
    )
    today = contract.concrete_contract(shape, k, methods)
    assert metadata["signatures"] == today
    served = tf.saved_model.load(SHIPPED_EXPORT)
    assert set(served.signatures) == set(contract.signature_names())
    for name, function in served.signatures.items():
        inputs = function.structured_input_signature[1]
        wanted = today[name]["inputs"]
        assert set(inputs) == set(wanted), name
        for port, spec in inputs.items():  # shapes are checked in the graph (unknown here)
            assert spec.dtype.name == wanted[port]["dtype"], (name, port)
        assert set(function.structured_outputs) == set(today[name]["outputs"]), name
    noise = noise_lib.gumbel_noise((2,) + shape + (k,), 0).numpy()
    sample = served.signatures["sample_with_noise"]
    for method in methods:
        assert sample(noise=tf.constant(noise), method=tf.constant(method))["samples"].shape[0] == 2
        for bad in (np.nan, np.inf, -np.inf):
            broken = noise.copy()
            broken[1, 3, 4, 0, 5] = bad
            with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
                sample(noise=tf.constant(broken), method=tf.constant(method))


def test_an_export_from_before_inpaint_and_event_shapes_still_loads_and_samples(monkeypatch):
    """Exports made before the `inpaint` signature and the metadata's `event_shape` (the shipped
    export was one until it was made anew): the shipped export with both taken away."""
    import tensorflow as tf  # noqa: PLC0415

    from tfps.serving import exported_sampler  # noqa: PLC0415

    real = exported_sampler._load_saved_model(SHIPPED_EXPORT)
    metadata = json.loads(real.signatures["metadata"]()["json"].numpy().decode())
    for key in ("event_shape", "incremental", "sampling_order"):
        metadata.pop(key, None)
    old_json = tf.constant(json.dumps(metadata))

    class Old:
        signatures = {k: v for k, v in real.signatures.items() if k != "inpaint"}

    Old.signatures["metadata"] = lambda: {"json": old_json}
    monkeypatch.setattr(exported_sampler, "_load_saved_model", lambda path: Old())
    served = exported_sampler.ExportedSampler(SHIPPED_EXPORT)
    assert served.event_shape == (8, 8, 1) and not served.incremental
    noise = noise_lib.gumbel_noise((2, 8, 8, 1, 17), 1)
    fpi = np.asarray(served.sample(noise, "fpi").samples)
    ancestral = np.asarray(served.sample(noise, "ancestral").samples)
    np.testing.assert_array_equal(fpi, ancestral)
