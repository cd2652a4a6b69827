"""Tests for the incremental choice of exports: tfps/serving/incremental_choice.py and `incremental`
of tfps/serving/export.py, tfps/serving/module.py and launch/export.py.

Exports with and without incremental ARM calls serve the same samples, bit for bit in every
output, each the ancestral sample of an independent eager loop (`oracles.ancestral_reference`,
[1, eq. 8], Wiggers & Hoogeboom, ICML 2020) and the library's; the choice is recorded in the
metadata and the serving contract does not change. Speed is never asserted: only that `auto`
keeps the faster of the two timings it records. The `auto` export of a training run is checked
in tests/test_export.py (`cli_export`).
"""

import os

import numpy as np
import pytest

from launch import benchmark_run
from tfps.models import made
from tfps.sampling import incremental, predictive
from tfps.sampling import noise as noise_lib
from tfps.serving import export, exported_sampler, incremental_choice, loading, module

import oracles
from launchers import launch_here
from tiny_models import trained_model

SHAPE, K = (4, 4, 1), 2


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(model, {incremental: ExportedSampler}): a tiny 2-scale PixelCNN exported with incremental
    calls forced on (version 1) and off (version 2)."""
    model = trained_model(SHAPE, K, steps=20, num_scales=2)
    base = str(tmp_path_factory.mktemp("exported") / "tiny")
    paths = {used: export.export_model(model, base, incremental=used) for used in (True, False)}
    assert paths == {True: os.path.join(base, "1"), False: os.path.join(base, "2")}
    return model, {used: exported_sampler.load_exported(path) for used, path in paths.items()}


def _assert_same_results(got, expected, what):
    for field in predictive.SampleResult._fields:
        np.testing.assert_array_equal(
            getattr(got, field).numpy(), getattr(expected, field).numpy(), err_msg=f"{field} {what}"
        )


def test_both_exports_serve_the_same_ancestral_samples_as_the_library(exports):
    model, served = exports
    library = predictive.sampler_for_model(model)
    assert served[True].methods == served[False].methods == library.methods
    noise = noise_lib.gumbel_noise((3,) + SHAPE + (K,), 0)
    reference = oracles.ancestral_reference(model, noise)
    for method in library.methods:
        plain = served[False].sample(noise, method)
        _assert_same_results(served[True].sample(noise, method), plain, f"of {method}")
        np.testing.assert_array_equal(plain.samples.numpy(), reference, err_msg=method)
    # The 2-scale hierarchy (strided and transposed convolutions) keeps the model's logits.
    x = reference.astype(np.int32)
    for exported in served.values():
        np.testing.assert_allclose(np.asarray(exported.logits(x)), model(x)[0].numpy(), atol=1e-5)
    expected = library.sample(noise, "fpi")
    for used, exported in served.items():
        _assert_same_results(exported.sample(noise, "fpi"), expected, f"incremental={used}")
    # Their sample_from_seed signatures are the same loops behind the seed's noise (checked against
    # the library on plain exports in tests/test_export.py); a first call of one costs ~15 s here.


def _specs(function):
    """{input or output name: (dtype, shape)} of a loaded signature."""
    specs = {**function.structured_input_signature[1], **function.structured_outputs}
    return {name: (spec.dtype, str(spec.shape)) for name, spec in specs.items()}


def test_the_metadata_records_the_forced_choice_and_the_contract_is_unchanged(exports):
    model, served = exports
    for used, exported in served.items():
        record = {
            "used": used,
            "mode": "true" if used else "false",
            "reason": "forced",
            "rows": incremental.window_rows(model, True) if used else None,  # the default window
            "seconds": None,
            "windows": None,
            "timed": None,
        }
        assert exported.metadata["incremental"] == record
        assert export.read_metadata(exported.path)["incremental"] == record  # the asset file
        assert exported.incremental is used
        text = incremental_choice.describe_export(exported.metadata)
        calls = "plain ARM calls"
        if used:
            calls = f"incremental ARM calls in windows of {record['rows']} rows"
        assert text == f"the export makes {calls} (incremental={record['mode']}: forced)"
    for used, exported in served.items():  # the benchmark's title on an export says it
        loaded = loading.Loaded(
            exported, exported.metadata, exported.metadata["model"], None, None, True, 0
        )
        title = benchmark_run.title(loaded)
        assert ("through the SavedModel with incremental ARM calls" in title) is used, title
    on, off = served[True], served[False]
    # The band calls are stored once (`sampling_loop.FunctionCalls`), not once per method and
    # signature: 1.5x the plain graph here, 4.4x when every loop held its own.
    graph = {
        used: os.path.getsize(os.path.join(e.path, "saved_model.pb")) for used, e in served.items()
    }
    assert graph[True] < 2 * graph[False], graph
    assert on.metadata["signatures"] == off.metadata["signatures"]
    assert sorted(on.signatures) == sorted(off.signatures)
    for name in on.signatures:
        assert _specs(on.signatures[name]) == _specs(off.signatures[name]), name


def test_auto_times_plain_and_each_window_and_keeps_the_fastest(exports, monkeypatch):
    model, _ = exports
    built = []
    sampler_for_model = predictive.sampler_for_model

    def recording(*args, **kwargs):
        sampler = sampler_for_model(*args, **kwargs)
        built.append(sampler.incremental_rows)
        return sampler

    monkeypatch.setattr(predictive, "sampler_for_model", recording)
    record = incremental_choice.choose(model, "auto", seeds=range(2))
    windows = incremental_choice.candidate_windows(model)
    assert windows == [2, SHAPE[0]]  # the smallest (2 scales: 2 rows) and the default (capped)
    assert built == [None, *windows]
    seconds = record["seconds"]
    assert sorted(seconds) == ["incremental", "plain"] and min(seconds.values()) > 0
    assert record["windows"] == {str(w): record["windows"][str(w)] for w in windows}
    assert seconds["incremental"] == min(record["windows"].values())
    assert record["used"] == (seconds["incremental"] < seconds["plain"])
    fastest = min(windows, key=lambda w: record["windows"][str(w)])
    assert record["rows"] == (fastest if record["used"] else None)
    assert record["reason"] == ("faster" if record["used"] else "not faster")
    assert record["mode"] == "auto"
    assert record["timed"] == {"method": "fpi", "batch_size": 1, "seeds": 2, "jit_compile": False}
    line = incremental_choice.describe(record)
    assert f"plain {seconds['plain']:.4f}s, incremental {seconds['incremental']:.4f}s" in line


def test_arms_without_row_bands_are_plain_for_auto_and_an_error_for_true(tmp_path, monkeypatch):
    model = made.MADE((3, 2, 1), K, hidden_units=8)

    def no_timing(*args, **kwargs):
        raise AssertionError("auto timed a model without row bands")

    monkeypatch.setattr(incremental_choice, "time_plain_and_incremental", no_timing)
    assert incremental_choice.choose(model, "auto") == {
        "used": False,
        "mode": "auto",
        "reason": "no row bands (not a PixelCNN)",
        "rows": None,
        "seconds": None,
        "windows": None,
        "timed": None,
    }
    base = tmp_path / "made"
    with pytest.raises(
        ValueError, match=r"^incremental=true needs row bands, .* PixelCNN .*; MADE does not"
    ):
        export.export_model(model, str(base), incremental=True)
    assert os.listdir(tmp_path) == []  # nothing written, not even the base directory


def test_bad_incremental_values_are_one_clear_error(exports, tmp_path):
    model, served = exports
    for bad in ("maybe", None, 1):
        with pytest.raises(ValueError, match=r"incremental must be 'auto', True or False, got"):
            export.export_model(model, str(tmp_path / "m"), incremental=bad)
    sampler = predictive.sampler_for_model(model)
    with pytest.raises(ValueError, match="incremental is for the default sampler"):
        export.export_model(model, str(tmp_path / "m"), sampler=sampler, incremental=True)
    with pytest.raises(ValueError, match="incremental is for the default sampler"):
        module.ServingModule(model, sampler=sampler, incremental=True)
    assert os.listdir(tmp_path) == []
    done = launch_here("launch.export", f"--model={tmp_path}", "--incremental=maybe")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--incremental" in done.stderr and "auto|true|false" in done.stderr
