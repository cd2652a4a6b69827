"""Tests for tfps/train/run_lock.py: one training process per run directory."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tfps.train import run_lock

from launchers import launch_here


def _lock(logdir, pid, host=None):
    os.makedirs(logdir, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": 0}
    with open(os.path.join(logdir, run_lock.LOCK_FILE), "w") as f:
        json.dump(record, f)


def _gone_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lock_names_its_owner_while_held_and_goes_with_the_run(tmp_path):
    logdir = str(tmp_path / "run")
    with run_lock.locked(logdir) as path:
        with open(path) as f:
            owner = json.load(f)
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(run_lock.RunDirectoryLockedError, match=f"process {os.getpid()}"):
            with run_lock.locked(logdir):
                pass  # a second run into the same logdir
        assert os.path.exists(path)  # the refused run left the owner's lock alone
    assert not os.path.exists(logdir)  # created for the run and left empty: removed


def test_a_lock_of_a_live_or_remote_process_is_refused(tmp_path):
    _lock(tmp_path / "live", os.getppid())  # the parent of this process: alive
    with pytest.raises(run_lock.RunDirectoryLockedError, match=r"remove .*\.lock if that process"):
        with run_lock.locked(str(tmp_path / "live")):
            pass
    _lock(tmp_path / "remote", _gone_pid(), host="another-host")  # its processes are not visible
    with pytest.raises(run_lock.RunDirectoryLockedError, match="on host another-host"):
        with run_lock.locked(str(tmp_path / "remote")):
            pass


@pytest.mark.parametrize("content", ["gone", "{not json"])
def test_a_stale_or_unreadable_lock_is_taken_over(tmp_path, content):
    logdir = tmp_path / "run"
    if content == "gone":
        _lock(logdir, _gone_pid())
    else:
        logdir.mkdir()
        (logdir / run_lock.LOCK_FILE).write_text(content)
    with run_lock.locked(str(logdir)) as path:
        with open(path) as f:
            assert json.load(f)["pid"] == os.getpid()
    assert os.listdir(logdir) == []


def test_the_launcher_refuses_a_locked_logdir_before_writing(tmp_path):
    logdir = tmp_path / "run"
    _lock(logdir, os.getppid())
    result = launch_here(
        "launch.train", "--config=configs/digits.py", f"--logdir={logdir}",
        "--config.training.steps=2", "--config.model.filters=8",
    )  # fmt: skip
    assert result.returncode != 0 and "is being written by process" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(logdir) == [run_lock.LOCK_FILE]  # no config.json, no checkpoint
