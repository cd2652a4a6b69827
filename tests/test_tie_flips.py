"""Tests for launch/tie_flips.py: counting the samples that float rounding flips between
compilations of one ARM (graph, XLA, batch 1, windows of rows)."""

import json

import numpy as np

from launch import tie_flips

from launchers import launch_here


def test_a_row_counts_the_samples_and_variables_that_differ():
    reference = np.zeros((4, 2, 3, 1), np.int32)
    other = reference.copy()
    other[1, 1, 2, 0] = 1  # a flip at the last variable of sample 1
    other[3, 0, 1:] = 1  # a flip that changed the rest of sample 3's first row
    row = tie_flips._row("xla", reference, other)
    assert row == dict(comparison="xla", samples=4, variables=24, samples_differ=2,
                       variables_differ=3, per_million=1e6 * 3 / 24)  # fmt: skip


def test_the_launcher_compares_xla_batch_one_and_windows_with_the_graph_calls(tiny_run, tmp_path):
    logdir, _ = tiny_run
    out = tmp_path / "flips"
    result = launch_here("launch.tie_flips", f"--model={logdir}", "--num_samples=5",
                         "--batch_size=2", "--single_samples=3", f"--output={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with open(f"{out}.json") as f:
        rows = {row["comparison"]: row for row in json.load(f)["rows"]}
    assert sorted(rows) == ["batch 1", "windows", "xla"]
    d = 8 * 8
    for name, row in rows.items():
        samples = 3 if name == "batch 1" else 5
        assert row["samples"] == samples and row["variables"] == samples * d
        assert 0 <= row["samples_differ"] <= samples
        assert row["samples_differ"] <= row["variables_differ"] <= row["variables"]
        assert row["per_million"] == 1e6 * row["variables_differ"] / row["variables"]
    assert "| xla | 5 | 320 |" in (tmp_path / "flips.md").read_text()


def test_an_unknown_method_is_one_clear_error(tiny_run, tmp_path):
    logdir, _ = tiny_run
    result = launch_here("launch.tie_flips", f"--model={logdir}", "--method=nope",
                         f"--output={tmp_path / 'flips'}")  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "unknown method 'nope'" in result.stderr
    assert not (tmp_path / "flips.md").exists()
