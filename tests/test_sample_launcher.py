"""Tests for launch/sample.py: files written, the same samples for every method, clear errors."""

import numpy as np
import pytest

from launchers import launch


def _sample(*flags):
    """`python launch/sample.py flags...`: as a script, so its own import path set-up is tested."""
    return launch("launch.sample", *flags, as_script=True)


def test_every_method_writes_the_same_samples(tiny_run, tmp_path):
    logdir, _ = tiny_run
    saved = {}
    for method in ("ancestral", "fpi", "last"):
        proc = _sample(f"--model={logdir}", f"--method={method}", "--num_samples=5",
                       "--batch_size=2", "--seed=3", f"--output_dir={tmp_path}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "% of d=64 calls" in proc.stdout
        saved[method] = np.load(tmp_path / f"samples_{method}.npy")
        assert (tmp_path / f"samples_{method}.png").stat().st_size > 0
    assert saved["ancestral"].shape == (5, 8, 8, 1) and saved["ancestral"].dtype == np.int32
    assert saved["ancestral"].min() >= 0 and saved["ancestral"].max() < 17
    np.testing.assert_array_equal(saved["fpi"], saved["ancestral"])
    np.testing.assert_array_equal(saved["last"], saved["ancestral"])


@pytest.mark.parametrize("flags,message", [
    (["--method=beam"], "unknown sampling method 'beam'"),
    (["--batch_size=0"], "batch_size"),
])
def test_bad_flags_get_one_clear_error(tiny_run, flags, message):
    proc = _sample(f"--model={tiny_run[0]}", *flags)
    assert proc.returncode != 0 and message in proc.stderr


def test_missing_model_is_named(tmp_path):
    proc = _sample(f"--model={tmp_path / 'nowhere'}")
    assert proc.returncode != 0 and "nowhere" in proc.stderr
