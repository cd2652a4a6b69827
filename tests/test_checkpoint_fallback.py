"""Tests for the checkpoint fallback of tfps/train/rundir.py and tfps/train/trainer.py: a corrupt
newest checkpoint is set aside and training resumes from the one before; any other failure to
read one changes nothing; checkpoints without a state file are found by their files."""

import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfps.train import checkpoints, rundir, training


def _tree(logdir):
    """{relative path: bytes} of every file under `logdir`."""
    files = {}
    for root, _, names in os.walk(logdir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, logdir)] = f.read()
    return files


def _copy(tiny_run, tmp_path):
    logdir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], logdir)
    return logdir, os.path.join(logdir, rundir.CHECKPOINT_DIR)


def _config(logdir, steps):
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        return training.TrainConfig(**{**json.load(f)["train"], "steps": steps})


def _truncate(path):
    with open(path, "rb") as f:
        content = f.read()
    with open(path, "wb") as f:
        f.write(content[: len(content) // 2])


@pytest.mark.parametrize(
    "damaged, damage",
    [("ckpt-20.data-*", "a data file shorter than its index says"),
     ("ckpt-20.index", "a truncated index file")],
)  # fmt: skip
def test_a_corrupt_newest_checkpoint_is_set_aside_and_training_resumes_before_it(
    tmp_path, tiny_run, damaged, damage
):
    logdir, ckpt_dir = _copy(tiny_run, tmp_path)
    (bad,) = glob.glob(os.path.join(ckpt_dir, damaged))
    _truncate(bad)
    corrupt = {name: content for name, content in _tree(ckpt_dir).items() if "ckpt-20" in name}
    assert len(corrupt) == 2  # ckpt-20.index and its one data file
    metrics = training.train(_config(logdir, 12), logdir)
    assert metrics["start_step"] == 10 and metrics["step"] == 12
    # Renamed, byte for byte, to ckpt-20.corrupt-<time>.*; no file named ckpt-20.* is left.
    after = _tree(ckpt_dir)
    (skipped,) = metrics["skipped_checkpoints"]
    target = skipped["set_aside_as"]
    assert skipped["checkpoint"] == "ckpt-20" and target.startswith("ckpt-20.corrupt-")
    assert f"ckpt-20: cannot restore checkpoint: {damage} (" in skipped["error"]
    assert {n.replace(target, "ckpt-20"): c for n, c in after.items() if target in n} == corrupt
    assert not [name for name in after if name.startswith("ckpt-20.") and target not in name]
    # The state file no longer names it; metrics.json and the export metadata list it.
    state = tf.train.get_checkpoint_state(ckpt_dir)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths][-1] == "ckpt-12"
    assert not any("ckpt-20" in p for p in state.all_model_checkpoint_paths)
    with open(os.path.join(logdir, rundir.METRICS_FILE)) as f:
        assert json.load(f)["skipped_checkpoints"] == [skipped]
    exported = rundir.training_metadata({"step": 12, "checkpoint": "ckpt-12"}, logdir)
    assert exported["skipped_checkpoints"] == [target]


@pytest.mark.parametrize(
    "error",
    [tf.errors.PermissionDeniedError, tf.errors.UnavailableError, tf.errors.ResourceExhaustedError],
)
def test_a_transient_error_is_one_error_and_changes_nothing(tmp_path, tiny_run, monkeypatch, error):
    logdir, _ = _copy(tiny_run, tmp_path)
    before = _tree(logdir)
    restore = tf.train.Checkpoint.restore

    def failing(self, prefix, *args, **kwargs):  # what a network filesystem does now and then
        if prefix.endswith("ckpt-20"):
            raise error(None, None, f"{prefix}.index; the filesystem says no")
        return restore(self, prefix, *args, **kwargs)

    monkeypatch.setattr(tf.train.Checkpoint, "restore", failing)
    with pytest.raises(rundir.CheckpointError, match=r"ckpt-20: cannot restore checkpoint \(") as e:
        training.train(_config(logdir, 20), logdir)
    assert not isinstance(e.value, checkpoints.CorruptCheckpointError)
    assert f"{error.__name__}: " in str(e.value) and "no older checkpoint was tried" in str(e.value)
    assert _tree(logdir) == before  # every file, byte for byte (config.json: the same config)
    with pytest.raises(rundir.CheckpointError, match="no older checkpoint was tried"):
        training.load_trained(logdir)  # loading the run does not fall back either


@pytest.mark.parametrize("state", ["deleted", "emptied"])
def test_checkpoints_without_a_state_file_are_found_by_their_files(tmp_path, tiny_run, state):
    logdir, ckpt_dir = _copy(tiny_run, tmp_path)
    state_file = os.path.join(ckpt_dir, "checkpoint")
    if state == "deleted":
        os.remove(state_file)
    else:
        open(state_file, "w").close()
    _, loaded = training.load_trained(logdir)
    assert loaded["step"] == 20 and loaded["checkpoint"].endswith("ckpt-20")
    metrics = training.train(_config(logdir, 20), logdir)  # evaluation only
    assert metrics["start_step"] == 20 and metrics["step"] == 20
    assert metrics["checkpoint"].endswith("ckpt-20") and metrics["skipped_checkpoints"] == []
    # The state file is written again, listing both, so the manager keeps rotating them.
    listed = tf.train.get_checkpoint_state(ckpt_dir).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in listed] == ["ckpt-10", "ckpt-20"]


def test_a_checkpoint_of_another_model_is_not_taken_for_corruption(tmp_path, tiny_run):
    logdir, ckpt_dir = _copy(tiny_run, tmp_path)
    before = _tree(ckpt_dir)
    other = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64), other=tf.Variable([1.0, 2.0]))
    with pytest.raises(rundir.CheckpointError, match="ckpt-20.*no older checkpoint was tried"):
        checkpoints.restore_latest_good(other, ckpt_dir, set_aside=True)
    assert _tree(ckpt_dir) == before


def test_a_failed_checksum_is_corruption_set_aside_never_over_another(
    tmp_path, tiny_run, monkeypatch
):
    logdir, ckpt_dir = _copy(tiny_run, tmp_path)
    (data,) = glob.glob(os.path.join(ckpt_dir, "ckpt-20.data-*"))
    size = os.path.getsize(data)
    monkeypatch.setattr(checkpoints.time, "strftime", lambda *args: "20000101T000000")  # one second
    names = []
    for seed in (0, 1):  # twice a corrupt ckpt-20 in the same second
        with open(data, "wb") as f:  # the same length, other bytes
            f.write(np.random.default_rng(seed).bytes(size))
        shutil.copy(os.path.join(tiny_run[0], "checkpoints", "ckpt-20.index"), ckpt_dir)
        step = tf.Variable(0, dtype=tf.int64)
        prefix, (skipped,) = checkpoints.restore_latest_good(
            tf.train.Checkpoint(step=step), ckpt_dir, partial=True, set_aside=True
        )
        assert os.path.basename(prefix) == "ckpt-10" and int(step.numpy()) == 10
        assert "ckpt-20: cannot restore checkpoint: a failed checksum (" in skipped["error"]
        names.append(skipped["set_aside_as"])
    assert names == ["ckpt-20.corrupt-20000101T000000", "ckpt-20.corrupt-20000101T000000-1"]
    assert checkpoints.set_aside_checkpoints(ckpt_dir) == names
    for name, seed in zip(names, (0, 1)):  # each kept its own bytes
        with open(glob.glob(os.path.join(ckpt_dir, name + ".data-*"))[0], "rb") as f:
            assert f.read() == np.random.default_rng(seed).bytes(size)
    state = tf.train.get_checkpoint_state(ckpt_dir)
    assert os.path.basename(state.model_checkpoint_path) == "ckpt-10"
