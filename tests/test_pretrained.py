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
