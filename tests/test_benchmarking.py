"""Tests for tfps/evaluation/timing.py, tfps/evaluation/benchmarking.py, launch/benchmark_run.py and
launch/benchmark.py (counts and formats, never speed)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfps.evaluation import benchmarking, timing
from tfps.models import autoencoder as autoencoder_lib
from tfps.sampling import predictive
from tfps.serving import decoder

from launchers import launch, launch_here
from tiny_models import tiny_model


def test_mean_std_is_bessel_corrected():
    mean, std = timing.mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert timing.mean_std([5.0]) == (5.0, 0.0)


def test_over_seeds_warms_up_on_its_own_seed_then_times_every_run_per_seed():
    drawn, calls = [], []

    def draw(seed):
        return drawn.append(seed) or tf.constant(seed)

    runs = [lambda x, name=name: calls.append((name, int(x))) or x * 2 for name in "ab"]
    out = list(timing.over_seeds(draw, [3, 4], *runs))
    assert drawn == [timing.WARM_UP_SEED, 3, 4]  # one warm-up input for every run
    assert calls == [
        ("a", timing.WARM_UP_SEED),
        ("b", timing.WARM_UP_SEED),
        ("a", 3),
        ("b", 3),
        ("a", 4),
        ("b", 4),
    ]
    assert [seed for seed, _ in out] == [3, 4]
    assert all(len(t) == 2 and int(t[0][0]) == 2 * seed and t[0][1] >= 0 for seed, t in out)


def test_over_seeds_warms_up_on_the_input_given():
    drawn, calls = [], []
    runs = [lambda x: calls.append(int(x)) or x]
    out = list(
        timing.over_seeds(
            lambda s: drawn.append(s) or tf.constant(s), [3], *runs, warm_up=tf.constant(-1)
        )
    )
    assert drawn == [3] and calls == [-1, 3] and [seed for seed, _ in out] == [3]


def test_best_of_keeps_the_fastest_of_k_runs_per_seed(monkeypatch):
    ticks = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0, 30.0, 37.0, 40.0, 41.5, 50.0, 54.0])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    calls = []
    run = [lambda x: calls.append(int(x)) or x]
    out = list(timing.over_seeds(tf.constant, [3, 4], *run, warm_up=tf.constant(-1), best_of=3))
    assert calls == [-1, 3, 3, 3, 4, 4, 4]  # one warm-up, then three timed runs per seed
    assert [seconds for _, [(_, seconds)] in out] == [1.0, 1.5]  # min(5, 1, 3), min(7, 1.5, 4)
    assert [int(result) for _, [(result, _)] in out] == [3, 4]


@pytest.mark.parametrize("best_of", [0, -1, 1.5, True, "3"])
def test_best_of_refuses_what_is_not_a_positive_integer(best_of):
    with pytest.raises(ValueError, match="best_of must be an integer >= 1"):
        list(timing.over_seeds(tf.constant, [0], tf.identity, best_of=best_of))


@pytest.mark.parametrize(
    "image_shape, event_shape, free",
    [
        ((3, 2, 2), None, [0, 4, 8, 11]),  # the first of each row of 4 variables, and the last
        ((1, 6, 1), (6,), [0, 5]),
    ],
)
def test_the_warm_up_input_leaves_one_free_variable_per_row_and_the_last(
    image_shape, event_shape, free
):
    model = tiny_model(image_shape, 3, filters=4)
    sampler = predictive.sampler_for_model(model)
    if event_shape is not None:  # the same ARM seen as a sequence
        sampler = predictive.PredictiveSampler(sampler.arm, image_shape, 3, event_shape=event_shape)
    draw, (noise, evidence, mask) = benchmarking.batch_inputs(sampler, 2)
    shape = (2,) + sampler.event_shape
    assert noise.shape == shape + (3,) and evidence.shape == mask.shape == shape
    np.testing.assert_array_equal(noise, draw(timing.WARM_UP_SEED)[0])
    for row in tf.reshape(mask, [2, -1]).numpy():
        assert np.flatnonzero(~row).tolist() == free
    assert not np.any(draw(0)[2]) and not np.any(evidence)


def test_a_timed_method_warms_up_in_a_call_per_row_on_the_loop_it_times(sampler):
    fresh = predictive.PredictiveSampler(sampler.arm, sampler.image_shape, sampler.num_categories)
    loop = fresh.loop_function("ancestral")
    draw, warm_up = benchmarking.batch_inputs(fresh, 2)
    assert int(loop(*warm_up).arm_calls) == 4  # 3 rows + the last variable, of d = 9
    kept = []
    percent, _ = benchmarking.time_sampler(fresh, "ancestral", 2, [0, 1], kept)
    assert percent == [100.0, 100.0] and loop.experimental_get_tracing_count() == 1
    for seed, result in zip([0, 1], kept):
        noise = draw(seed)[0]
        np.testing.assert_array_equal(result.samples, sampler.sample(noise, "ancestral").samples)


def test_repeated_runs_once_untimed_then_repeats_times():
    calls = []
    result, seconds = timing.repeated(lambda: calls.append(1) or tf.constant(len(calls)), 3)
    assert len(calls) == 4 and len(seconds) == 3 and int(result) == 4


@pytest.fixture(scope="module")
def sampler():
    return predictive.sampler_for_model(tiny_model((3, 3, 1), 2, filters=4))


def test_benchmark_rows_report_calls_and_speedup_against_ancestral(sampler):
    rows = benchmarking.benchmark_sampler(
        sampler, ["fpi", "zeros"], batch_sizes=(1, 2), seeds=range(3), log=None
    )
    assert [(r.method, r.batch_size) for r in rows] == [
        (m, b) for b in (1, 2) for m in ("ancestral", "fpi", "zeros")
    ]
    for row in rows:
        assert row.seeds == 3 and row.time_mean > 0
        assert 0 < row.calls_percent_mean <= 100
        if row.method == "ancestral":
            assert row.calls_percent_mean == 100 and row.calls_percent_std == 0 and row.speedup == 1
    # The calls are those of the sampler for seeds 0..2.
    fpi_b2 = next(r for r in rows if r.method == "fpi" and r.batch_size == 2)
    calls = [100 * int(sampler.sample_from_seed(s, 2, "fpi").arm_calls) / 9 for s in range(3)]
    assert fpi_b2.calls_percent_mean == pytest.approx(np.mean(calls))


def test_markdown_table_has_a_line_per_method_and_a_column_group_per_batch():
    rows = [
        benchmarking.Row("ancestral", 1, 100, 0, 2.0, 0.1, 1.0, 10),
        benchmarking.Row("fpi", 1, 5.0, 1.0, 0.1, 0.01, 20.0, 10),
        benchmarking.Row("fpi", 32, 7.0, 0.5, 0.5, 0.02, 8.0, 10),
    ]
    table = benchmarking.markdown_table(rows, "t").splitlines()
    assert table[0] == "**t**"
    assert table[2].count("(B=1)") == 3 and table[2].count("(B=32)") == 3
    assert table[4].startswith("| ancestral | 100.0% ± 0.0 | 2.000 ± 0.100 | 1.0x | - | - | - |")
    assert table[5] == (
        "| fpi | 5.0% ± 1.0 | 0.100 ± 0.010 | 20.0x | 7.0% ± 0.5 | 0.500 ± 0.020 | 8.0x |"
    )


def test_tfp_peer_has_the_same_size_and_samples_in_range():
    peer = benchmarking.tfp_pixelcnn_peer((3, 3, 1), 4, num_resnets=1, filters=4)
    samples = peer.sample(2).numpy()
    assert samples.shape == (2, 3, 3, 1)
    assert samples.min() >= 0 and samples.max() <= 3
    rows = benchmarking.benchmark_tfp_peer(peer, 9, batch_sizes=(1,), seeds=range(2), log=None)
    assert rows[0].calls_percent_mean == pytest.approx(100 * 10 / 9) and rows[0].seeds == 2


def test_benchmark_launcher_writes_markdown_json_and_pictures(tiny_run, tmp_path):
    logdir, _ = tiny_run
    out = str(tmp_path / "bench")
    proc = launch(
        "launch.benchmark",
        f"--model={logdir}",
        "--methods=fpi,last",
        "--batch_sizes=1,2",
        "--num_seeds=2",
        "--best_of=2",
        "--peer_seeds=1",
        f"--output={out}",
        "--scheduled_samples=5",
        "--scheduled_slots=2",
        f"--logdir={tmp_path / 'tb'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out + ".json"))
    methods = [(r["method"], r["batch_size"]) for r in results["rows"]]
    assert ("ancestral", 1) in methods and ("fpi", 2) in methods and ("last", 1) in methods
    assert (benchmarking.TFP_PIXELCNN, 2) in methods
    assert "| fpi |" in open(out + ".md").read() and "| fpi |" in proc.stdout
    assert "fastest of 2 runs" in results["title"]
    # Pictures as PNG next to the results, and TensorBoard runs per method (tests/test_summaries.py
    # checks their contents).
    for method in ("ancestral", "fpi", "last"):
        assert os.path.getsize(f"{out}_convergence_{method}.png") > 0
        assert os.listdir(tmp_path / "tb" / f"benchmark_{method}")
    assert os.path.getsize(f"{out}_forecast_mistakes_fpi.png") > 0
    assert not os.path.exists(f"{out}_forecast_mistakes_ancestral.png")  # it forecasts nothing
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(tmp_path / "tb" / "benchmark_fpi"))
    events.Reload()
    assert {
        "table1/arm_calls_percent_b1",
        "table1/speedup_b2",
        "forecast_accuracy",
        "convergence",
    } <= set(events.Tags()["tensors"])


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--methods=beam", "unknown sampling method 'beam'"),
        ("--batch_sizes=0", "batch sizes must be integers"),
        ("--incremental_rows=2", "--incremental_rows needs --incremental"),
    ],
)
def test_benchmark_launcher_rejects_bad_flags(tiny_run, flag, message):
    proc = launch_here("launch.benchmark", f"--model={tiny_run[0]}", flag, "--num_seeds=1")
    assert proc.returncode != 0 and message in proc.stderr


def test_benchmark_launcher_times_incremental_windows_of_the_rows_asked(tiny_run, tmp_path):
    from tfps.sampling import incremental
    from tfps.train import training

    out = str(tmp_path / "bench")
    proc = launch_here(
        "launch.benchmark",
        f"--model={tiny_run[0]}",
        "--methods=fpi",
        "--batch_sizes=2",
        "--num_seeds=1",
        "--tfp_peer=false",
        "--scheduled_samples=0",
        "--incremental",
        "--incremental_rows=1",
        f"--output={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out + ".json"))
    model, _ = training.load_trained(tiny_run[0])
    rows = incremental.window_rows(model, 1)  # 1 rounded up to the coarsest scale's rows
    assert results["incremental_rows"] == rows
    assert f"'(incremental)' rows: windows of {rows} rows" in results["title"]
    assert [r["method"] for r in results["rows"]] == [
        "ancestral",
        "fpi",
        "ancestral (incremental)",
        "fpi (incremental)",
    ]


def test_benchmark_launcher_adds_the_learned_row_of_a_run_with_heads(tiny_forecast_run, tmp_path):
    out = str(tmp_path / "bench")
    proc = launch_here(
        "launch.benchmark",
        f"--model={tiny_forecast_run[0]}",
        "--methods=learned",
        "--batch_sizes=2",
        "--num_seeds=1",
        "--tfp_peer=false",
        "--scheduled_samples=0",
        f"--output={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.load(open(out + ".json"))["rows"]
    assert [r["method"] for r in rows] == ["ancestral", "learned (T=2)"]
    assert "| learned (T=2) |" in open(out + ".md").read()


def test_benchmark_launcher_measures_a_saved_model(tmp_path):
    """Pointed at an export, the benchmark times the SavedModel's own loops."""
    out = str(tmp_path / "nested" / "bench")
    proc = launch_here(
        "launch.benchmark",
        "--model=exported/digits",
        "--methods=fpi",
        "--batch_sizes=1",
        "--num_seeds=2",
        "--tfp_peer=false",
        "--scheduled_samples=3",
        "--scheduled_slots=2",
        f"--output={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out + ".json"))
    assert "through the SavedModel" in results["title"]
    fpi = next(r for r in results["rows"] if r["method"] == "fpi")
    assert 0 < fpi["calls_percent_mean"] < 100


def test_time_decode_reports_every_batch_size():
    autoencoder = autoencoder_lib.DiscreteAutoencoder((8, 8, 1), 17, 16, 4, 8)  # untrained
    times = benchmarking.time_decode(decoder.LatentDecoder(autoencoder), (1, 4), range(2))
    assert set(times) == {1, 4} and all(mean > 0 and std >= 0 for mean, std in times.values())
    assert "B=4" in benchmarking.decode_time_line(times)
