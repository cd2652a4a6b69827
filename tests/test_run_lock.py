"""Tests for tfps/train/run_lock.py: one training process per run directory."""

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tfps.train import run_lock

from launchers import REPO, launch_here

# A process that tries `run_lock.locked(logdir)` once the pipe `go` (a descriptor number, or "")
# reaches its end: it writes "won" or "refused" to `result`, prints "locked" and holds the lock
# until `release` exists. With `raw`, it only flocks `logdir/.lock` (an owner between its lock and
# its record).
HOLDER = """
import fcntl, os, sys, time
from tfps.train import run_lock
logdir, go, result, release, raw = sys.argv[1:]
if go:
    os.read(int(go), 1)  # blocks until the test closes the pipe's other end: all start at once
try:
    if raw:
        fd = os.open(os.path.join(logdir, run_lock.LOCK_FILE), os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        holding = open(os.devnull)
    else:
        holding = run_lock.locked(logdir)
    with holding:
        open(result, "w").write("won")
        print("locked", flush=True)
        while not os.path.exists(release):
            time.sleep(0.01)
except run_lock.RunDirectoryLockedError:
    open(result, "w").write("refused")
    sys.exit(3)
"""


def _holder(logdir, tmp_path, name, go="", raw=False):
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(logdir), str(go), str(tmp_path / f"{name}.result"),
         str(tmp_path / "release"), "raw" if raw else ""],
        cwd=REPO, stdout=subprocess.PIPE, text=True, pass_fds=(int(go),) if go else (),
    )  # fmt: skip


@contextlib.contextmanager
def held(logdir, tmp_path, raw=False):
    """`with held(logdir, tmp_path) as process:` another live process holds `logdir`'s lock."""
    process = _holder(logdir, tmp_path, "holder", raw=raw)
    try:
        assert process.stdout.readline() == "locked\n"
        yield process
    finally:
        process.kill()
        process.communicate()


def _record(logdir, pid, host=None):
    """A lock file and owner record naming `pid` on `host`, which no process holds."""
    os.makedirs(logdir, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": 0}
    for name in (run_lock.LOCK_FILE, run_lock.OWNER_FILE):  # the lock file: its old format
        with open(os.path.join(logdir, name), "w") as f:
            json.dump(record, f)


def _gone_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _owner(logdir):
    with open(os.path.join(logdir, run_lock.OWNER_FILE)) as f:
        return json.load(f)


def test_the_lock_names_its_owner_while_held_and_goes_with_the_run(tmp_path):
    logdir = str(tmp_path / "run")
    with run_lock.locked(logdir) as path:
        assert path == os.path.join(logdir, run_lock.LOCK_FILE) and os.path.exists(path)
        owner = _owner(logdir)
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(run_lock.RunDirectoryLockedError, match=f"process {os.getpid()}"):
            with run_lock.locked(logdir):
                pass  # a second run into the same logdir, here in the same process
        assert _owner(logdir) == owner  # the refused run left the owner's lock alone
    assert not os.path.exists(logdir)  # created for the run and left empty: removed


def test_eight_processes_started_at_once_one_wins(tmp_path):
    logdir = tmp_path / "run"
    _record(logdir, _gone_pid())  # a stale lock, which every one of them sees
    go, start = os.pipe()
    processes = [_holder(logdir, tmp_path, str(i), go=go) for i in range(8)]
    os.close(go)
    try:
        time.sleep(0.5)  # their Python has started and waits on the pipe
        os.close(start)
        deadline = time.monotonic() + 60
        results = [tmp_path / f"{i}.result" for i in range(8)]
        while not all(r.exists() and r.read_text() for r in results):
            assert time.monotonic() < deadline, [p.poll() for p in processes]
            time.sleep(0.02)
        outcomes = [r.read_text() for r in results]
        assert sorted(outcomes) == ["refused"] * 7 + ["won"], outcomes
        winner = processes[outcomes.index("won")]
        assert _owner(logdir)["pid"] == winner.pid  # no refused process touched the record
    finally:
        (tmp_path / "release").touch()
        codes = [p.wait(timeout=60) for p in processes]
    assert sorted(codes) == [0] + [3] * 7
    assert os.listdir(logdir) == []  # the winner removed its lock and record


def test_a_sigkilled_owners_lock_is_free_at_once(tmp_path):
    logdir = tmp_path / "run"
    with held(logdir, tmp_path) as process:
        with pytest.raises(run_lock.RunDirectoryLockedError, match=f"process {process.pid} on"):
            with run_lock.locked(str(logdir)):
                pass
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        assert _owner(logdir)["pid"] == process.pid  # SIGKILL left its record behind
        with run_lock.locked(str(logdir)):
            assert _owner(logdir)["pid"] == os.getpid()
    assert os.listdir(logdir) == []


def test_an_owner_locked_before_writing_its_record_is_refused(tmp_path):
    logdir = tmp_path / "run"
    logdir.mkdir()
    with held(logdir, tmp_path, raw=True):  # `.lock` exists, empty, and is held
        with pytest.raises(run_lock.RunDirectoryLockedError, match="by another process"):
            with run_lock.locked(str(logdir)):
                pass
    assert os.listdir(logdir) == [run_lock.LOCK_FILE]


@pytest.mark.parametrize("owner", ["this process", "a live one", "gone", "remote", "unreadable"])
def test_a_lock_file_nobody_holds_is_taken_over(tmp_path, owner):
    # Whatever a lock file or record says (this very pid: a container restarted), the lock is
    # free when no process holds it.
    logdir = tmp_path / "run"
    if owner == "unreadable":
        logdir.mkdir()
        for name in (run_lock.LOCK_FILE, run_lock.OWNER_FILE):
            (logdir / name).write_text("{not json")
    else:
        pid = {"this process": os.getpid(), "a live one": os.getppid()}.get(owner) or _gone_pid()
        _record(logdir, pid, host="another-host" if owner == "remote" else None)
    with run_lock.locked(str(logdir)):
        assert _owner(logdir)["pid"] == os.getpid()
    assert os.listdir(logdir) == []


def test_a_lock_file_removed_while_it_is_being_locked_is_not_taken(tmp_path, monkeypatch):
    # An owner removes `.lock` as it ends. A process that opened that file just before, then
    # locks it, holds a file no longer at the path, where a third process has locked a new one.
    path = tmp_path / "run" / run_lock.LOCK_FILE
    path.parent.mkdir()
    path.touch()
    flock, third = fcntl.flock, []

    def after_the_owner_ended(fd, operation):
        if not third:
            os.remove(path)
            third.append(os.open(path, os.O_RDWR | os.O_CREAT))
            flock(third[0], fcntl.LOCK_EX)
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", after_the_owner_ended)
    try:
        with pytest.raises(run_lock.RunDirectoryLockedError, match="by another process"):
            with run_lock.locked(str(path.parent)):
                pass
        assert os.path.samestat(os.stat(path), os.fstat(third[0]))  # the third's, untouched
    finally:
        os.close(third[0])


def test_release_removes_only_its_own_record(tmp_path):
    logdir = tmp_path / "run"
    with run_lock.locked(str(logdir)):
        (logdir / "other").write_text(json.dumps({"pid": 12345, "host": "elsewhere"}))
        os.replace(logdir / "other", logdir / run_lock.OWNER_FILE)  # replaced meanwhile
    assert _owner(logdir)["pid"] == 12345
    assert os.listdir(logdir) == [run_lock.OWNER_FILE]  # its own lock file: removed


def test_the_launcher_refuses_a_locked_logdir_before_writing(tmp_path):
    logdir = tmp_path / "run"
    with held(logdir, tmp_path) as process:
        result = launch_here(
            "launch.train", "--config=configs/digits.py", f"--logdir={logdir}",
            "--config.training.steps=2", "--config.model.filters=8",
        )  # fmt: skip
        assert result.returncode != 0
        assert f"is being written by process {process.pid}" in result.stderr
        assert "Traceback" not in result.stderr
        # No config.json, no checkpoint: only the holder's lock and record.
        assert sorted(os.listdir(logdir)) == [run_lock.LOCK_FILE, run_lock.OWNER_FILE]
