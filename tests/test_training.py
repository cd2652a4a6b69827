"""Tests for tfps/train/training.py, tfps/train/trainer.py, tfps/train/rundir.py and
launch/train.py: init, learning, resume, loading, the launcher."""

import glob
import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from tfps.data import builtin as tfps_data
from tfps.models import pixelcnn
from tfps.sampling import predictive
from tfps.train import forecasting, losses, progress, rundir, training
from tfps.train import metrics as metrics_lib

from launchers import launch, launch_here

LOG2_17 = math.log2(17)


def read_scalars(logdir, subdir):
    """{tag: {step: value}} from the TensorBoard event files in logdir/subdir."""
    scalars = {}
    for path in sorted(glob.glob(os.path.join(logdir, subdir, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


def read_train_config(logdir):
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        return json.load(f)["train"]


def checkpoint_numbers(logdir):
    state = tf.train.get_checkpoint_state(os.path.join(logdir, rundir.CHECKPOINT_DIR))
    return sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)


# ----------------------------------------------------------------------------- init and evaluation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_untrained_model_is_near_uniform_on_digits(seed):
    # Glorot init with zero output biases gives near-uniform categoricals: bpd ~ log2(K).
    keras.utils.set_random_seed(seed)
    model = pixelcnn.PixelCNN((8, 8, 1), 17, num_resnets=1, filters=16)
    test, _ = tfps_data.load("digits", "test")
    bpd = metrics_lib.evaluate_bpd(model, test, batch_size=128)
    assert abs(bpd - LOG2_17) < 0.10 * LOG2_17


def test_evaluate_bpd_is_the_mean_over_images_for_any_batching():
    keras.utils.set_random_seed(0)
    model = pixelcnn.PixelCNN((8, 8, 1), 17, num_resnets=1, filters=8)
    x, _ = tfps_data.load_numpy("digits", "test")
    logits, _ = model(x, training=False)
    expected = float(tf.reduce_mean(pixelcnn.bits_per_dim(logits, x)))
    # 360 test images: batch 7 leaves a short last batch that must not be over-weighted.
    for batch_size in (7, 64, 1000):
        assert metrics_lib.evaluate_bpd(model, x, batch_size) == pytest.approx(expected, rel=1e-5)
    first = float(tf.reduce_mean(pixelcnn.bits_per_dim(logits[:14], x[:14])))
    assert metrics_lib.evaluate_bpd(model, x, 7, max_batches=2) == pytest.approx(first, rel=1e-5)


def test_evaluate_bpd_rejects_images_of_the_wrong_shape():
    model = pixelcnn.PixelCNN((8, 8, 1), 17, num_resnets=0, filters=4)
    with pytest.raises(ValueError, match="shape"):
        metrics_lib.evaluate_bpd(model, np.zeros((4, 28, 28, 1), np.int32), 2)


# ----------------------------------------------------------------------------- config


def test_config_validation_names_the_field():
    for field, value in [
        ("steps", 0),
        ("batch_size", 0),
        ("dropout_rate", 1.0),
        ("lr_decay", 1.5),
        ("eval_batches", 0),
        ("dataset", "nope"),
    ]:
        with pytest.raises(ValueError, match=field):
            training.TrainConfig(**{field: value}).validate()
    with pytest.raises(ValueError, match="bits"):
        training.TrainConfig(dataset="digits", bits=3).validate()
    with pytest.raises(ValueError, match="num_scales"):
        training.TrainConfig(num_scales=0).validate()
    too_many = "num_scales=5 is too many for digits: 8x8 allows at most 4,"
    with pytest.raises(ValueError, match=too_many):
        training.TrainConfig(dataset="digits", num_scales=5).validate()
    training.TrainConfig(dataset="digits", num_scales=4).validate()
    training.TrainConfig().validate()


def test_compute_loss_sums_weighted_terms():
    model = pixelcnn.PixelCNN((8, 8, 1), 17, num_resnets=0, filters=4)
    x, _ = tfps_data.load_numpy("digits", "test")
    extra = losses.LossTerm("mean_h", lambda o: tf.reduce_mean(o.h), weight=0.5)
    total, terms = losses.compute_loss(model, x[:8], (losses.BPD_TERM, extra), training=False)
    assert set(terms) == {"bpd", "mean_h"}
    assert float(total) == pytest.approx(
        float(terms["bpd"]) + 0.5 * float(terms["mean_h"]), rel=1e-6
    )


# ----------------------------------------------------------------------------- training


@pytest.mark.usefixtures("graph_optimizations")
def test_loss_falls_on_digits(tmp_path, tiny_config):
    config = tiny_config(
        steps=300, log_every=50, eval_every=100, checkpoint_every=300, eval_batches=None
    )
    metrics = training.train(config, str(tmp_path))
    train_bpd = read_scalars(str(tmp_path), "train")["bpd"]
    first_logged = train_bpd[50]  # Mean over steps 1..50, starting near uniform.
    assert first_logged > 3.5
    assert metrics["step"] == 300
    assert metrics["train_bpd"] < first_logged - 0.8
    assert metrics["test_bpd"] < LOG2_17 - 1.0
    assert metrics["validation_bpd"] < LOG2_17 - 1.0
    with open(tmp_path / rundir.METRICS_FILE) as f:
        assert json.load(f)["test_bpd"] == pytest.approx(metrics["test_bpd"])


@pytest.mark.usefixtures("graph_optimizations")
@pytest.mark.parametrize("overrides", [dict(num_resnets=0), dict(num_scales=3)])
def test_other_architectures_train_and_reload(tmp_path, tiny_config, overrides):
    """No resnets (the up stream gets no gradient) and the 3-scale hierarchy both train, and
    the reloaded model gives the test bpd the run reported."""
    metrics = training.train(tiny_config(steps=3, checkpoint_every=3, **overrides), str(tmp_path))
    assert metrics["step"] == 3 and math.isfinite(metrics["test_bpd"])
    model, config = training.load_trained(str(tmp_path))
    for name, value in overrides.items():
        assert getattr(model, name) == value == config["model"][name]
    test, _ = tfps_data.load("digits", "test")
    assert metrics_lib.evaluate_bpd(model, test, 64) == pytest.approx(metrics["test_bpd"], rel=1e-5)


def test_run_directory_contents(tiny_run):
    logdir, metrics = tiny_run
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        config = json.load(f)
    assert config["train"]["steps"] == 20 and config["train"]["filters"] == 16
    assert config["model"]["filters"] == 16 and config["model"]["num_categories"] == 17
    assert config["dataset"]["image_shape"] == [8, 8, 1]
    assert checkpoint_numbers(logdir) == [10, 20]
    train_scalars = read_scalars(logdir, "train")
    assert {"bpd", "learning_rate", "steps_per_sec"} <= set(train_scalars)
    assert sorted(train_scalars["bpd"]) == [10, 20]
    # Exponential decay applied per step: lr(n) = 2e-4 * 0.999995 ** n.
    assert train_scalars["learning_rate"][20] == pytest.approx(2e-4 * 0.999995**20, rel=1e-6)
    validation = read_scalars(logdir, "validation")["bpd"]
    assert validation[20] == pytest.approx(metrics["validation_bpd"], rel=1e-6)
    assert read_scalars(logdir, "test")["bpd"][20] == pytest.approx(metrics["test_bpd"], rel=1e-6)


def test_resume_continues_from_the_latest_checkpoint(tmp_path, tiny_config):
    logdir = str(tmp_path)
    # A steep decay makes the optimizer's restored iteration count visible in the learning rate.
    first = training.train(tiny_config(steps=20, lr_decay=0.9), logdir)
    assert (first["start_step"], first["step"]) == (0, 20)
    assert checkpoint_numbers(logdir) == [10, 20]
    _, at_20 = training.load_trained(logdir)

    second = training.train(tiny_config(steps=30, lr_decay=0.9), logdir)
    assert (second["start_step"], second["step"]) == (20, 30)
    assert checkpoint_numbers(logdir) == [10, 20, 30]
    scalars = read_scalars(logdir, "train")
    assert sorted(scalars["bpd"]) == [10, 20, 30]  # Step 30 logged once, not steps 10, 20 again.
    assert scalars["learning_rate"][30] == pytest.approx(2e-4 * 0.9**30, rel=1e-4)
    assert at_20["step"] == 20
    _, at_30 = training.load_trained(logdir)
    assert at_30["step"] == 30 and at_30["train"]["steps"] == 30

    # Already complete: evaluates only, same checkpoint, same test bpd.
    third = training.train(tiny_config(steps=30, lr_decay=0.9), logdir)
    assert (third["start_step"], third["step"], third["steps_per_sec"]) == (30, 30, None)
    assert checkpoint_numbers(logdir) == [10, 20, 30]
    assert third["test_bpd"] == pytest.approx(second["test_bpd"], rel=1e-6)


def test_interrupt_saves_a_checkpoint_to_resume_from(tmp_path, tiny_config, monkeypatch):
    logdir = str(tmp_path)
    log_progress = progress.log_progress

    def interrupt_at_15(progress, step, *args):
        if step == 15:
            raise KeyboardInterrupt
        return log_progress(progress, step, *args)

    monkeypatch.setattr(progress, "log_progress", interrupt_at_15)
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny_config(steps=30, log_every=5), logdir)
    assert checkpoint_numbers(logdir) == [10, 15]
    monkeypatch.setattr(progress, "log_progress", log_progress)
    metrics = training.train(tiny_config(steps=30, log_every=5), logdir)
    assert (metrics["start_step"], metrics["step"]) == (15, 30)


def test_conflicting_config_in_existing_logdir_raises(tmp_path, tiny_run, tiny_config):
    logdir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], logdir)
    before = open(os.path.join(logdir, rundir.CONFIG_FILE)).read()
    with pytest.raises(rundir.ConfigConflictError, match="filters") as err:
        training.train(tiny_config(filters=8), logdir)
    assert logdir in str(err.value)
    with pytest.raises(rundir.ConfigConflictError, match="dataset"):
        training.train(tiny_config(dataset="digits28_binary"), logdir)
    assert open(os.path.join(logdir, rundir.CONFIG_FILE)).read() == before
    assert checkpoint_numbers(logdir) == [10, 20]
    with pytest.raises(rundir.ConfigConflictError, match="model.num_scales: 1 in the run, 2"):
        training.train(tiny_config(num_scales=2), logdir)


def test_runs_from_before_num_scales_resume_and_load(tmp_path, tiny_run, tiny_config):
    """A config.json without `num_scales` (written before it existed) means one scale."""
    logdir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], logdir)
    path = os.path.join(logdir, rundir.CONFIG_FILE)
    with open(path) as f:
        config = json.load(f)
    del config["model"]["num_scales"]
    with open(path, "w") as f:
        json.dump(config, f)
    model, _ = training.load_trained(logdir)
    assert model.num_scales == 1
    training.train(tiny_config(steps=21), logdir)
    assert checkpoint_numbers(logdir)[-1] == 21


# ----------------------------------------------------------------------------- load_trained


def test_load_trained_restores_the_trained_model(tiny_run):
    logdir, metrics = tiny_run
    model, config = training.load_trained(logdir)
    assert config["step"] == 20 and config["checkpoint"].endswith("ckpt-20")
    assert os.path.samefile(config["logdir"], logdir)
    assert config["model"] == model.model_config()
    test, _ = tfps_data.load("digits", "test")
    assert metrics_lib.evaluate_bpd(model, test, 64) == pytest.approx(metrics["test_bpd"], rel=1e-5)
    earlier, config_10 = training.load_trained(os.path.join(logdir, "checkpoints", "ckpt-10"))
    assert config_10["step"] == 10
    bpd_10 = metrics_lib.evaluate_bpd(earlier, test, 64)
    assert bpd_10 != pytest.approx(metrics["test_bpd"], rel=1e-5)


def test_load_trained_missing_paths_raise_not_found(tmp_path, tiny_run):
    missing = str(tmp_path / "no_such_run")
    with pytest.raises(rundir.CheckpointNotFoundError, match="no_such_run") as err:
        training.load_trained(missing)
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(rundir.CheckpointNotFoundError, match="config.json"):
        training.load_trained(str(tmp_path))  # A directory that is not a run.
    prefix = os.path.join(tiny_run[0], "checkpoints", "ckpt-99")
    with pytest.raises(rundir.CheckpointNotFoundError, match="ckpt-99"):
        training.load_trained(prefix)
    no_checkpoints = tmp_path / "fresh"
    no_checkpoints.mkdir()
    shutil.copy(os.path.join(tiny_run[0], rundir.CONFIG_FILE), no_checkpoints)
    with pytest.raises(rundir.CheckpointNotFoundError, match="no checkpoint"):
        training.load_trained(str(no_checkpoints))


@pytest.mark.parametrize("damage", ["truncate", "overwrite"])
def test_load_trained_corrupt_checkpoint_raises_checkpoint_error(tmp_path, tiny_run, damage):
    logdir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], logdir)
    (data_file,) = glob.glob(os.path.join(logdir, "checkpoints", "ckpt-20.data-*"))
    content = open(data_file, "rb").read()
    with open(data_file, "wb") as f:
        f.write(
            content[: len(content) // 2]
            if damage == "truncate"
            else np.random.default_rng(0).bytes(len(content))
        )
    prefix = os.path.join(logdir, "checkpoints", "ckpt-20")
    with pytest.raises(rundir.CheckpointError, match="ckpt-20") as err:
        training.load_trained(prefix)  # that checkpoint, named: an error
    assert "cannot restore" in str(err.value)
    # The run directory: the newest checkpoint that restores, ckpt-10 (a warning names ckpt-20).
    _, loaded = training.load_trained(logdir)
    assert loaded["step"] == 10 and loaded["checkpoint"].endswith("ckpt-10")
    # Training resumes from the checkpoint before it (ckpt-10), with a warning naming ckpt-20.
    config = training.TrainConfig(**{**read_train_config(logdir), "steps": 12})
    metrics = training.train(config, logdir)
    assert metrics["start_step"] == 10 and metrics["step"] == 12
    # With every checkpoint bad: one error naming them, never a fresh start.
    for data in glob.glob(os.path.join(logdir, "checkpoints", "ckpt-*.data-*")):
        with open(data, "wb") as f:
            f.write(b"")
    with pytest.raises(rundir.CheckpointError, match=r"no checkpoint restores: .*ckpt-12.*ckpt-10"):
        training.train(training.TrainConfig(**{**config.to_dict(), "steps": 14}), logdir)


def test_load_trained_corrupt_config_raises(tmp_path, tiny_run):
    logdir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], logdir)
    with open(os.path.join(logdir, rundir.CONFIG_FILE), "w") as f:
        f.write("{not json")
    with pytest.raises(rundir.CheckpointError, match="config.json"):
        training.load_trained(logdir)


# ----------------------------------------------------------------------------- launcher


def run_launcher(args, module=False):
    """launch/train.py with `args`: in this process (`module`) or as a script in a subprocess (what
    a shell runs)."""
    if module:
        return launch_here("launch.train", *args)
    return launch("launch.train", *args, as_script=True)


def test_launcher_trains_and_reports_test_bpd(tmp_path):
    logdir = str(tmp_path / "run")
    result = run_launcher(
        [
            f"--logdir={logdir}",
            "--config=configs/digits.py",
            "--config.model.num_resnets=1",
            "--config.model.filters=8",
            "--config.training.steps=10",
            "--config.training.checkpoint_every=5",
            "--config.training.log_every=5",
            "--config.training.eval_every=5",
            "--config.training.eval_batches=1",
            "--config.training.batch_size=16",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pixelcnn autoregressive: every 64 of 64 positions perturbed" in result.stderr
    assert "test bpd" in result.stdout
    with open(os.path.join(logdir, rundir.METRICS_FILE)) as f:
        metrics = json.load(f)
    assert f"test bpd {metrics['test_bpd']:.4f}" in result.stdout
    assert checkpoint_numbers(logdir) == [5, 10]
    for subdir in ("train", "validation", "test"):
        assert glob.glob(os.path.join(logdir, subdir, "events.out.tfevents.*")), subdir
    assert read_scalars(logdir, "train")["bpd"].keys() == {5, 10}


def test_launcher_helpfull_lists_the_presets_fields():
    result = launch_here("launch.train", "--config=configs/paper_binary_mnist.py", "--helpfull")
    assert "Traceback" not in result.stderr, result.stderr[-3000:]  # absl's help exits with 1
    for line in (
        "--config.model.filters (int, 60)",
        "--config.forecast.steps (int, 20)",
        "--config.optimizer.learning_rate (float, 0.0002)",
        "--config.data.dataset (str, 'binarized_mnist')",
    ):
        assert line in " ".join(result.stdout.split()), line


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--config.data.dataset=no_such_dataset"], "no_such_dataset"),
        (["--config.training.steps=0"], "steps must be >= 1"),
        (["--config.training.batch_size=0"], "batch_size must be >= 1"),
        (
            ["--config=configs/digits.py", "--config.forecast.steps=64"],
            "forecast_steps must be below d = 64",
        ),
        (["--config.model.num_scales=0"], "num_scales must be >= 1"),
        (["--config.model.no_such_field=1"], "--config has no field 'no_such_field'"),
        (["--config.model.filters=many"], "--config.model.filters=many"),
        (["--config=configs/no_such_preset.py"], "configs/no_such_preset.py"),
        (["--config=configs/latent_autoencoder.py"], "but one of kind 'arm' is needed"),
    ],
)
def test_launcher_rejects_bad_flags(tmp_path, args, expected):
    result = run_launcher([f"--logdir={tmp_path / 'run'}"] + args, module=True)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("launcher", ["launch.train", "launch.train_autoencoder"])
def test_the_training_launchers_report_no_tpu_without_a_traceback(tmp_path, monkeypatch, launcher):
    # The StrategyError of tfps.distribute.strategies (here: TPU_NAME names no TPU reachable).
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    logdir = tmp_path / "run"
    result = launch_here(launcher, f"--logdir={logdir}", "--config.training.strategy=tpu")
    assert result.returncode != 0
    assert "strategy=tpu needs a TPU: TPU_NAME='my-tpu'" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert not logdir.exists()


# ----------------------------------------------------------------------------- forecasting heads


FORECAST_TAGS = {
    f"forecast_accuracy/{name}"
    for name in ("learned_t0", "learned_t1", "learned", "fpi_t0", "fpi_t1", "fpi")
}


def test_forecast_run_logs_the_kl_and_forecast_accuracy(tiny_forecast_run):
    logdir, metrics = tiny_forecast_run
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        config = json.load(f)
    assert config["forecast"] == {"steps": 2, "shared": True, "filters": 16}
    assert config["train"]["forecast_weight"] == 0.01
    train_scalars = read_scalars(logdir, "train")
    assert sorted(train_scalars["forecast"]) == [10, 20] and train_scalars["forecast"][20] > 0
    validation = read_scalars(logdir, "validation")
    assert FORECAST_TAGS <= set(validation)
    for tag in FORECAST_TAGS:
        assert sorted(validation[tag]) == [10, 20] and 0 <= validation[tag][20] <= 1, tag
    learned = [validation[f"forecast_accuracy/learned_t{t}"][20] for t in range(2)]
    assert validation["forecast_accuracy/learned"][20] == pytest.approx(np.mean(learned), rel=1e-5)


def test_load_trained_restores_the_forecasting_heads(tiny_forecast_run, tiny_run, tiny_config):
    logdir, _ = tiny_forecast_run
    model, config = training.load_trained(logdir)
    heads = config["forecast_heads"]
    assert heads.method == "learned" and heads.steps == 2 and heads.shares_representation
    # The restored heads reproduce the accuracy logged at the last step (same posterior seeds).
    validation_set, _ = tfps_data.load("digits", "validation")

    def accuracy_fn(x, seed):
        return forecasting.forecast_accuracy(model, heads, x, seed)

    accuracy = metrics_lib.evaluate_forecast_accuracy(
        accuracy_fn, validation_set, batch_size=32, max_batches=2, seed=(0, 20)
    )
    logged = read_scalars(logdir, "validation")
    for name, value in accuracy.items():
        assert value == pytest.approx(logged[f"forecast_accuracy/{name}"][20], abs=1e-6), name
    _, config_10 = training.load_trained(os.path.join(logdir, "checkpoints", "ckpt-10"))
    assert not np.allclose(config_10["forecast_heads"].get_weights()[0], heads.get_weights()[0])
    assert training.load_trained(tiny_run[0])[1]["forecast_heads"] is None
    sampler = predictive.sampler_for_model(model, heads=heads)
    assert "learned" in sampler.methods


def test_resuming_with_other_forecasting_heads_is_refused(tmp_path, tiny_forecast_run, tiny_config):
    logdir = str(tmp_path / "run")
    shutil.copytree(tiny_forecast_run[0], logdir)
    for overrides, conflict in [
        ({"forecast_steps": 3}, "forecast.steps"),
        ({"forecast_steps": 0}, "forecast.steps"),
        ({"forecast_steps": 2, "forecast_shared": False}, "forecast.shared"),
    ]:
        with pytest.raises(rundir.ConfigConflictError, match=conflict):
            training.train(tiny_config(steps=30, **overrides), logdir)


def test_unshared_heads_leave_the_arm_exactly_as_trained_without_heads(
    tmp_path, tiny_run, tiny_config
):
    # The ablation's heads see x and detached posterior noise: no gradient reaches the ARM.
    metrics = training.train(
        tiny_config(steps=20, forecast_steps=2, forecast_shared=False), str(tmp_path)
    )
    # Up to rounding: the two runs' graphs differ (heads or none), so their kernels may round the
    # ARM's gradients differently; a gradient leaking from the heads moves the bpd by far more.
    assert metrics["test_bpd"] == pytest.approx(tiny_run[1]["test_bpd"], rel=1e-5)
    _, config = training.load_trained(str(tmp_path))
    heads = config["forecast_heads"]
    assert heads.method == "learned_unshared" and not heads.shares_representation


def test_launcher_trains_forecasting_heads(tmp_path):
    logdir = str(tmp_path / "run")
    result = run_launcher(
        module=True,
        args=[
            f"--logdir={logdir}",
            "--config=configs/digits.py",
            "--config.model.num_resnets=1",
            "--config.model.filters=8",
            "--config.training.steps=4",
            "--config.training.checkpoint_every=4",
            "--config.training.log_every=2",
            "--config.training.eval_every=4",
            "--config.training.eval_batches=1",
            "--config.training.batch_size=8",
            "--config.forecast.steps=3",
            "--config.forecast.shared=false",
            "--config.forecast.filters=4",
        ],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_train_config(logdir)["forecast_steps"] == 3
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        assert json.load(f)["forecast"] == {"steps": 3, "shared": False, "filters": 4}
    assert "forecast_accuracy/learned_t2" in read_scalars(logdir, "validation")


@pytest.mark.parametrize(
    "source, message",
    [
        ("def get_config():\n    raise KeyError('oops')\n", "the preset fails: KeyError: 'oops'"),
        ("def get_config(:\n", "the preset fails: SyntaxError"),
    ],
)
def test_a_failing_preset_is_named_without_a_traceback(tmp_path, source, message):
    preset = tmp_path / "preset.py"
    preset.write_text(source)
    result = run_launcher([f"--logdir={tmp_path / 'run'}", f"--config={preset}"], module=True)
    assert result.returncode == 1 and f"--config={preset}: {message}" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
