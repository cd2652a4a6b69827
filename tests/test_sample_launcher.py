"""Tests for tfps/serving/loading.py and launch/sample.py: one loader for runs and exports, files
written, the same samples for every method, clear errors."""

import os

import numpy as np
import pytest

from tfps.sampling import predictive
from tfps.serving import exported_sampler, loading

from launchers import REPO, launch, launch_here


def _sample(*flags, shell=False):
    """launch/sample.py with `flags`: in this process, or with `shell` as a script in a subprocess
    (so that its own import path set-up is tested)."""
    if shell:
        return launch("launch.sample", *flags, as_script=True)
    return launch_here("launch.sample", *flags)


def test_every_method_writes_the_same_samples(tiny_run, tmp_path):
    logdir, _ = tiny_run
    saved = {}
    for methods in ("ancestral", "fpi,last"):  # several methods from one load: one call
        proc = _sample(
            f"--model={logdir}",
            f"--method={methods}",
            "--num_samples=5",
            "--batch_size=2",
            "--seed=3",
            f"--output_dir={tmp_path}",
            shell=methods == "ancestral",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        for method in methods.split(","):
            assert f"method {method}: 5 samples" in proc.stdout and "% of d=64 calls" in proc.stdout
            saved[method] = np.load(tmp_path / f"samples_{method}.npy")
            assert (tmp_path / f"samples_{method}.png").stat().st_size > 0
    assert saved["ancestral"].shape == (5, 8, 8, 1) and saved["ancestral"].dtype == np.int32
    assert saved["ancestral"].min() >= 0 and saved["ancestral"].max() < 17
    np.testing.assert_array_equal(saved["fpi"], saved["ancestral"])
    np.testing.assert_array_equal(saved["last"], saved["ancestral"])
    # The same with incremental calls in the smallest windows.
    windowed = tmp_path / "windowed"
    proc = _sample(
        f"--model={logdir}",
        "--method=fpi",
        "--num_samples=5",
        "--batch_size=2",
        "--seed=3",
        "--incremental",
        "--incremental_rows=1",
        f"--output_dir={windowed}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(windowed / "samples_fpi.npy"), saved["ancestral"])


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--method=beam"], "unknown sampling method 'beam'"),
        (["--batch_size=0"], "batch_size"),
        (["--incremental_rows=0"], "incremental_rows"),
        (["--incremental_rows=2"], "--incremental_rows needs --incremental"),
    ],
)
def test_bad_flags_get_one_clear_error(tiny_run, flags, message):
    proc = _sample(f"--model={tiny_run[0]}", *flags)
    assert proc.returncode != 0 and message in proc.stderr


def test_missing_model_is_named(tmp_path):
    proc = _sample(f"--model={tmp_path / 'nowhere'}")
    assert proc.returncode != 0 and "nowhere" in proc.stderr


def test_load_reads_a_run_and_an_export_alike(tiny_run):
    run = loading.load(tiny_run[0])
    assert isinstance(run.sampler, predictive.PredictiveSampler) and not run.is_export
    assert run.step == 20 and run.heads is None and run.decoder is None
    assert run.architecture["filters"] == 16 and run.training is run.description
    shipped = loading.load(os.path.join(REPO, "exported", "digits"))
    assert isinstance(shipped.sampler, exported_sampler.ExportedSampler) and shipped.is_export
    assert shipped.description["format"] == "tfps.saved_model/1"
    assert shipped.training["dataset"]["name"] == "digits" and shipped.step > 0
    assert shipped.architecture == shipped.description["model"] and shipped.decoder is None


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory or checkpoint prefix"):
        loading.load(str(tmp_path / "nowhere"))
