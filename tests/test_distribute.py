"""Tests for tfps/distribute/strategies.py and the distributed paths of tfps/train/trainer.py and
launch/sample.py.

Logical CPU devices and multi-worker collectives are configured before TensorFlow starts, so every
distributed run is a launcher in a subprocess, as a user would run it; the one-device runs they
are compared with, and the flag errors, run in this process (`launch_here`).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from launch import distribute_figures
from tfps.distribute import replicated, strategies
from tfps.train import config as config_lib

from launchers import REPO, launch, launch_here, run

TINY = (
    "--config=configs/digits.py", "--config.model.filters=8", "--config.model.num_resnets=1",
    "--config.model.dropout_rate=0.0", "--config.training.batch_size=16",
    "--config.training.log_every=2", "--config.training.eval_batches=1",
)  # fmt: skip
# The same global batch on 2 replicas: the per-example losses are summed in another order, so
# the float32 figures agree to rounding, not bit for bit.
RTOL = 1e-5


def train(logdir, *flags, steps=4, here=False):
    """Trains in a subprocess (what a distributed run needs), or in this process with `here`."""
    result = (launch_here if here else launch)(
        "launch.train", *TINY, f"--logdir={logdir}", f"--config.training.steps={steps}", *flags
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(logdir, "metrics.json")) as f:
        return json.load(f)


MULTI_WORKER = "--config.training.strategy=multi_worker"
MIRRORED = ("--config.training.strategy=mirrored", "--config.training.cpu_replicas=2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distribute")
    one = train(root / "one", here=True)
    two = train(root / "two", *MIRRORED)
    return root, one, two


def test_mirrored_on_two_replicas_trains_the_same_model(runs):
    _, one, two = runs
    print(f"steps/s: 1 device {one['steps_per_sec']:.2f}, mirrored 2 {two['steps_per_sec']:.2f}")
    print(f"train bpd: 1 device {one['train_bpd']!r}, 2 replicas {two['train_bpd']!r}")
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for name in ("train_bpd", "validation_bpd", "test_bpd"):
        np.testing.assert_allclose(two[name], one[name], rtol=RTOL, err_msg=name)


def test_a_mirrored_run_resumes_on_one_device(runs):
    root, _, _ = runs
    resumed = train(root / "two", steps=6, here=True)  # recorded config: 1 CPU in this process
    assert resumed["start_step"] == 4 and resumed["step"] == 6
    again = train(root / "two", "--config.training.strategy=default", steps=8, here=True)
    assert again["start_step"] == 6 and again["step"] == 8 and again["replicas"] == 1


def test_sampling_on_two_replicas_gives_the_one_device_samples(runs, tmp_path):
    root, _, _ = runs
    samples = {}
    for strategy in ("default", "mirrored"):
        out = tmp_path / strategy
        result = (launch if strategy == "mirrored" else launch_here)(
            "launch.sample", f"--model={root / 'one'}", "--method=fpi", "--num_samples=5",
            "--batch_size=2", "--seed=3", f"--output_dir={out}", f"--strategy={strategy}",
            *(["--cpu_replicas=2"] if strategy == "mirrored" else []),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        samples[strategy] = np.load(out / "samples_fpi.npy")
    assert samples["default"].shape == (5, 8, 8, 1)
    np.testing.assert_array_equal(samples["mirrored"], samples["default"])


def test_the_benchmark_launcher_spreads_each_batch_over_two_replicas(runs, tmp_path):
    root, _, _ = runs
    results = {}
    for strategy in ("default", "mirrored"):
        out = tmp_path / strategy / "bench"
        result = (launch if strategy == "mirrored" else launch_here)(
            "launch.benchmark", f"--model={root / 'one'}", "--methods=fpi", "--batch_sizes=1,3",
            "--num_seeds=2", "--tfp_peer=false", "--scheduled_samples=5", "--scheduled_slots=3",
            f"--output={out}", f"--strategy={strategy}",
            *(["--cpu_replicas=2"] if strategy == "mirrored" else []),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        with open(f"{out}.json") as f:
            results[strategy] = json.load(f)
        pictures = sorted(p.name for p in out.parent.glob("*.png"))
        results[strategy]["pictures"] = {p: (out.parent / p).read_bytes() for p in pictures}
    one, two = results["default"], results["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert "split over 2 replicas" in two["title"] and "ARM calls of the slowest" in two["title"]
    assert "replicas" not in one["title"]
    calls = [[(r["method"], r["batch_size"], r["calls_percent_mean"]) for r in t["rows"]]
             for t in (one, two)]  # fmt: skip
    assert calls[1] == calls[0] and len(calls[0]) == 4
    [scheduled] = two["scheduling"]
    assert scheduled["replicas"] == 2 and scheduled["samples_agree"]
    # The sample grids, mistake and convergence maps of the 2 x 3 samples: the same pictures.
    assert {"bench_samples_fpi.png", "bench_forecast_mistakes_fpi.png"} <= set(one["pictures"])
    assert two["pictures"] == one["pictures"]


@pytest.mark.parametrize(
    "launcher, flags, message",
    [
        ("launch.benchmark", ("--cpu_replicas=2",), "cpu_replicas=2 needs strategy 'mirrored'"),
        ("launch.benchmark", ("--strategy=tpu",), "strategy must be one of 'default', 'mirrored'"),
        ("launch.benchmark", ("--strategy=mirrored", "--cpu_replicas=0"), "cpu_replicas must be"),
        # The flags are defined once, for both launchers.
        ("launch.sample", ("--strategy=multi_worker",), "multi_worker and tpu are for training"),
    ],
)
def test_bad_strategy_flags_of_the_sampling_launchers_are_one_clear_error(
    launcher, flags, message, tmp_path
):
    result = launch_here(launcher, f"--model={tmp_path}", *flags)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


# The benchmarks' runs on 2 CPU replicas against one device, in a fresh process (the CPU is split
# before TensorFlow starts): prints, per run, whether the samples and every per-sample field are
# the one-device ones, and the ARM calls both ways.
REPLICATED_BENCHMARK = """
import json
import numpy as np
from tfps.distribute import strategies
from tfps.evaluation import benchmarking, scheduling_report
from tfps.sampling import predictive
mirrored = strategies.make_strategy("mirrored", 2)
from tiny_models import tiny_model
with mirrored.scope():
    sampler = predictive.sampler_for_model(tiny_model((3, 3, 1), 3, filters=4))
out = {}
for name, strategy in (("one", None), ("two", mirrored)):
    results = {}
    rows = benchmarking.benchmark_sampler(sampler, ["fpi"], (1, 3), range(2), None, results,
                                          strategy=strategy)
    out[name] = dict(calls=[r.calls_percent_mean for r in rows], results=results,
                     report=scheduling_report.calls_per_sample_report(sampler, 5, 3, "fpi", seed=1,
                                                               strategy=strategy))
same = {}
for key, results in out["one"]["results"].items():
    for seed, (one, two) in enumerate(zip(results, out["two"]["results"][key])):
        same[f"{key[0]} b{key[1]} seed {seed}"] = all(
            np.array_equal(np.asarray(getattr(one, f)), np.asarray(getattr(two, f)))
            for f in one._fields)
reports = {name: out[name]["report"] for name in out}
print(json.dumps(dict(same=same, calls={n: out[n]["calls"] for n in out}, reports=reports)))
"""


def test_benchmark_runs_on_two_replicas_give_the_one_device_samples_and_calls():
    result = run([sys.executable, "-c", REPLICATED_BENCHMARK],
                 env={"PYTHONPATH": os.path.join(REPO, "tests")})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # Every seed, method and batch size (1: one replica idle; 3: shares of 2 and 1).
    assert len(out["same"]) == 8 and all(out["same"].values()), out["same"]
    # The slowest replica's calls of a batch are the batch's calls on one device.
    assert out["calls"]["two"] == out["calls"]["one"]
    one, two = out["reports"]["one"], out["reports"]["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["samples_agree"] and two["samples_agree"]
    for name in ("batch1_calls_per_sample", "unscheduled_calls_per_sample",
                 "scheduled_mean_calls_per_example"):  # fmt: skip
        assert two[name] == one[name], name
    # 5 samples in shares of 3 and 2 on 2 replicas of ceil(3 / 2) = 2 slots: the list-scheduling
    # bounds, from all the calls spread over the 4 slots to one sample after another.
    assert two["ideal_calls_per_sample"] == one["batch1_calls_per_sample"] / 4
    assert two["ideal_calls_per_sample"] <= two["scheduled_calls_per_sample"]
    assert two["scheduled_calls_per_sample"] <= one["batch1_calls_per_sample"]


def _start_workers(logdir, steps, tmp_dirs, *flags):
    """The two workers of a multi-worker run (`launch.train` in subprocesses over loopback)."""
    workers = [f"localhost:{port}" for port in distribute_figures.free_ports(2, "localhost")]
    processes = []
    for index, tmp in enumerate(tmp_dirs):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(tf_config),
               "TMPDIR": str(tmp)}  # fmt: skip
        command = [sys.executable, "-m", "launch.train", *TINY, f"--logdir={logdir}",
                   f"--config.training.steps={steps}", MULTI_WORKER, *flags]  # fmt: skip
        processes.append(
            subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    return processes


def _train_workers(logdir, steps, tmp_dirs):
    for process in _start_workers(logdir, steps, tmp_dirs):
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    with open(os.path.join(logdir, "metrics.json")) as f:
        return json.load(f)


def _saved_steps(logdir):
    directory = logdir / "checkpoints"
    names = os.listdir(directory) if directory.exists() else []
    return sorted(int(m[1]) for m in map(re.compile(r"ckpt-(\d+)\.index$").match, names) if m)


def test_multi_worker_trains_checkpoints_and_resumes_with_only_the_chief_writing(tmp_path):
    """Two workers over loopback, and a fault: SIGKILL of worker 1 once the chief has saved a
    checkpoint. The chief cannot go on alone (its collectives fail) and stops with one clear error
    naming the checkpoint (it is killed too if it waits instead); restarting both workers resumes
    from the newest good checkpoint and ends at the same step count as an unbroken run, in the
    chief's logdir, which only the chief writes."""
    logdir, steps = tmp_path / "run", 200
    tmp_dirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for tmp in tmp_dirs:
        tmp.mkdir()
    chief, worker = _start_workers(logdir, steps, tmp_dirs, "--config.training.checkpoint_every=2")
    try:
        deadline = time.monotonic() + 300
        while not _saved_steps(logdir) and time.monotonic() < deadline:
            assert chief.poll() is None and worker.poll() is None, chief.communicate()[1][-3000:]
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=60) == -signal.SIGKILL
        try:
            chief.wait(timeout=60)
        except subprocess.TimeoutExpired:
            chief.send_signal(signal.SIGKILL)
    finally:
        for process in (chief, worker):
            process.kill()
        chief_error = chief.communicate()[1]
        worker.communicate()
    saved = _saved_steps(logdir)
    print(f"killed after checkpoints {saved}; the chief's exit status {chief.returncode}")
    assert saved and saved[-1] < steps, saved  # killed mid-run, after a checkpoint
    if chief.returncode != -signal.SIGKILL:
        assert "a worker of the multi-worker run was lost" in chief_error, chief_error[-3000:]
        assert "start every worker again with the same command" in chief_error
        assert "Traceback" not in chief_error, chief_error[-3000:]
    resumed = _train_workers(logdir, steps, tmp_dirs)
    print(f"resumed from step {resumed['start_step']}: {resumed['steps_per_sec']:.1f} steps/s")
    assert 0 < resumed["start_step"] <= saved[-1] and resumed["step"] == steps
    assert resumed["replicas"] == 2 and steps in _saved_steps(logdir)
    with open(logdir / "config.json") as f:
        assert json.load(f)["train"]["steps"] == steps
    assert not (logdir / ".lock").exists()  # released at the end (a stale one: taken over)
    # At most one event file per split and session: the chief's only.
    for split in ("train", "validation", "test"):
        assert 1 <= len(os.listdir(logdir / split)) <= 2, split
    # The other worker wrote into a temporary directory, removed at the end; the killed one's is
    # left behind (SIGKILL runs no cleanup).
    assert len([p for p in os.listdir(tmp_dirs[1]) if p.startswith("tfps_worker_")]) <= 1


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(strategy="nccl"), "strategy must be one of 'default', 'mirrored'"),
        (dict(cpu_replicas=0), "cpu_replicas must be >= 1 (or None), got 0"),
        (dict(mixed_precision="float16"), "mixed_precision must be None or one of"),
        (dict(jit_compile="yes"), "jit_compile must be true or false"),
    ],
)
def test_bad_settings_are_one_clear_error(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config_lib.TrainConfig(**values).validate()
    if "jit_compile" not in values:
        with pytest.raises(ValueError, match=re.escape(message)):
            strategies.check(**values)


def test_the_launcher_reports_a_bad_strategy(tmp_path):
    result = launch_here("launch.train", *TINY, f"--logdir={tmp_path}",
                         "--config.training.strategy=gpus")  # fmt: skip
    assert result.returncode != 0
    assert "strategy must be one of 'default', 'mirrored', 'multi_worker', 'tpu'" in result.stderr
    assert not os.listdir(tmp_path)


def test_tpu_without_a_tpu_is_one_clear_error():
    with pytest.raises(strategies.StrategyError, match="strategy=tpu needs a TPU"):
        strategies.make_strategy("tpu")


def test_a_tpu_name_that_names_no_reachable_tpu_is_one_clear_error(monkeypatch):
    # Off Google Cloud, TPUClusterResolver's metadata lookup of a TPU name raises urllib's URLError.
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    with pytest.raises(strategies.StrategyError, match="TPU_NAME='my-tpu'") as raised:
        strategies.make_strategy("tpu")
    assert "strategy=tpu needs a TPU" in str(raised.value)
    assert isinstance(raised.value.__cause__, OSError)


def test_shares_are_contiguous_and_cover_every_sample():
    assert replicated.shares(5, 2) == [(0, 3), (3, 5)]
    assert replicated.shares(1, 3) == [(0, 1), (1, 1), (1, 1)]


@pytest.mark.parametrize(
    "flag",
    ["--config.training.mixed_precision=mixed_float16", "--config.training.jit_compile=true"],
)
def test_mixed_precision_and_xla_train(tmp_path, flag):
    metrics = train(tmp_path, flag, steps=2, here=True)
    assert metrics["step"] == 2 and np.isfinite(metrics["test_bpd"]) and metrics["test_bpd"] < 5
