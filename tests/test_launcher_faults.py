"""Faults inside a launcher's computation: `launch.inpaint` and `launch.anytime` turn only bad flags
and inputs into a one-line usage error, so that a bug keeps its traceback; broken exactness is a
non-zero exit; the records say what was run.

In process (`launch_here`), with the run loaders replaced by tiny untrained models (no training):
the launchers' own code runs, the library's loaders and data are stubbed.
"""

import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps.data
from tfps.evaluation import occlusions
from tfps.models import farm_made, made
from tfps.sampling import prefix
from tfps.serving import loading
from tfps.train import training

from launchers import launch_here
from tiny_models import farm_config

SHAPE, K, TEST_IMAGES = (4, 4, 1), 3, 3


@pytest.fixture
def inpaint_run(monkeypatch, tmp_path):
    """`launch.inpaint` on a tiny 2-ordering MADE whose test split holds 3 images: the run's
    logdir (its loader and data stubbed)."""
    keras.utils.set_random_seed(0)
    model = farm_made.OrderedMADE(SHAPE, K, orderings=("tl_rows", "br_rows"), hidden_units=8)
    logdir = str(tmp_path / "run")
    config = {"train": farm_config().to_dict(), "logdir": logdir, "step": 3}
    images = np.random.default_rng(0).integers(0, K, (TEST_IMAGES,) + SHAPE).astype(np.int32)
    opened = types.SimpleNamespace(
        info=types.SimpleNamespace(name="tiny", image_shape=SHAPE, num_categories=K),
        load=lambda split: tf.data.Dataset.from_tensor_slices(images),
    )
    monkeypatch.setattr(training, "load_trained", lambda path: (model, config))
    monkeypatch.setattr(tfps.data, "open", lambda train_config: opened)
    return logdir


def _inpaint(logdir, out, *flags):
    return launch_here("launch.inpaint", f"--model={logdir}", f"--output_dir={out}", *flags)


def test_inpaint_records_the_images_and_masks_it_ran(inpaint_run, tmp_path):
    out = tmp_path / "out"
    done = _inpaint(inpaint_run, out, "--occlusion=0,0,2,2", "--num_masks=4", "--num_images=16")
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "inpaint_0_0_2_2.json").read_text())
    assert record["flags"]["num_images"] == TEST_IMAGES  # the split had 3, not 16
    assert record["flags"]["num_masks"] == len(record["rectangles"]) == 1  # one rectangle
    assert "1 mask(s) x 3 images" in (out / "inpaint_0_0_2_2.md").read_text()


def _keeps_the_traceback(run, monkeypatch, target, name, good_flag):
    """`target.name` raising inside the computation: exit 1 with its traceback; a bad flag: one
    line, no traceback. `run(folder, flag)` runs the launcher."""

    def broken(*args, **kwargs):
        raise ValueError(f"a bug inside {name}")

    monkeypatch.setattr(target, name, broken)
    done = run("out", good_flag)
    assert done.returncode == 1 and "Traceback" in done.stderr
    assert f"ValueError: a bug inside {name}" in done.stderr
    bad = run("bad", "--method=magic")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "unknown sampling method 'magic'" in bad.stderr


def test_inpaint_keeps_the_traceback_of_an_error_in_its_computation(
    inpaint_run, tmp_path, monkeypatch
):
    def run(folder, flag):
        return _inpaint(inpaint_run, tmp_path / folder, flag)

    _keeps_the_traceback(run, monkeypatch, occlusions, "score", "--occlusion=best")


class _Autoencoder:
    """The decoder side of a channel code of N codes: zero images, each decode counted."""

    latent_channels, num_levels = 4, 2

    def __init__(self):
        self.decodes = 0

    def decode(self, codes, num_codes):
        self.decodes += 1
        return tf.zeros([tf.shape(codes)[0], 2, 2, 1])

    def to_levels(self, images):
        return np.zeros(np.shape(images), np.int32)


@pytest.fixture
def anytime_run(monkeypatch, tmp_path):
    """`launch.anytime` on a tiny MADE prior over 4 codes: `(logdir, autoencoder)`."""
    keras.utils.set_random_seed(0)
    prior = made.MADE((4,), K, hidden_units=8)
    autoencoder = _Autoencoder()
    decoder = types.SimpleNamespace(latent_shape=(4,), autoencoder=autoencoder)
    logdir = str(tmp_path / "prior")
    config = {"logdir": logdir, "train": {"dataset": "digits"}}
    monkeypatch.setattr(loading, "load_code_prior", lambda path: (prior, decoder, config))
    return logdir, autoencoder


def _anytime(logdir, out, *flags):
    return launch_here(
        "launch.anytime", f"--model={logdir}", f"--output_dir={out}", "--num_samples=2",
        "--classifier_steps=0", "--num_codes=1,3", *flags,
    )  # fmt: skip


def test_anytime_warms_up_the_decoder_before_the_timed_call(anytime_run, tmp_path):
    logdir, autoencoder = anytime_run
    done = _anytime(logdir, tmp_path / "out", "--method=ancestral,fpi")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Every method sampled the same codes: yes." in done.stdout
    assert autoencoder.decodes == 2 * 2 * 2  # code lengths x methods x (warm-up + timed)


def test_anytime_exits_non_zero_when_the_methods_sample_different_codes(
    anytime_run, tmp_path, monkeypatch
):
    logdir, _ = anytime_run
    exact = prefix.anytime_sample

    def inexact(prior, noise, j, method, *args):
        got = exact(prior, noise, j, method, *args)
        return got._replace(codes=(got.codes + 1) % K) if method == "fpi" else got

    monkeypatch.setattr(prefix, "anytime_sample", inexact)
    out = tmp_path / "out"
    done = _anytime(logdir, out, "--method=ancestral,fpi")
    assert done.returncode != 0 and "exactness broken" in done.stderr
    assert "different codes for the same noise at code lengths [1, 3]" in done.stderr
    rows = json.loads((out / "anytime.json").read_text())["rows"]  # written, to inspect
    assert [r["same_codes"] for r in rows] == [False, False]


def test_anytime_keeps_the_traceback_of_an_error_in_its_computation(
    anytime_run, tmp_path, monkeypatch
):
    logdir, _ = anytime_run

    def run(folder, flag):
        return _anytime(logdir, tmp_path / folder, flag)

    _keeps_the_traceback(run, monkeypatch, prefix, "anytime_sample", "--method=fpi")
