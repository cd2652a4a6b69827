"""One training process per run directory: a kernel lock on `<logdir>/.lock`, held for the run.

Two processes training into one logdir would write the same checkpoints in turn. `locked(logdir)`
holds an exclusive `fcntl.flock` on `<logdir>/.lock` for the run's life. The kernel grants it to
one open file at a time and drops it when its holder ends, however it ends (an error, SIGKILL, a
container restart), so a lock is never stale and a reused pid means nothing. A second process, or
a second `locked` in the same process, is refused at once with `RunDirectoryLockedError`. On NFS
Linux maps `flock` onto whole-file POSIX locks, which the server grants across hosts.

The owner's pid, host and start time, `<logdir>/.lock.owner`, serve only the refusal's message:
written to a temporary file and renamed into place, never seen half-written. At the end the owner
removes its record (only its own: it carries a random token) and the lock file, still holding the
lock; a process that locked a file just removed sees that it is no longer the one at that path and
locks the new one. A record left by a killed owner is replaced with a warning naming it.
"""

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
import uuid

from absl import logging

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"


class RunDirectoryLockedError(RuntimeError):
    """Another live process is training into the run directory."""


def _owner(path):
    """The record `{pid, host, started, token}` at `path`, None if there is no valid one."""
    try:
        with open(path) as f:
            owner = json.load(f)
        return owner if isinstance(owner.get("pid"), int) and owner.get("host") else None
    except (OSError, ValueError, AttributeError):
        return None


def _lock(path):
    """A descriptor of the file at `path` holding its exclusive lock; None if another holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the last owner removed the logdir it had created
            os.makedirs(os.path.dirname(path), exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_at(fd, path):
                return fd
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its owner removed it after this process opened it: lock the new one


def _is_at(fd, path):
    """Whether the open file `fd` is the file now at `path`."""
    try:
        at, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (at.st_dev, at.st_ino) == (held.st_dev, held.st_ino)


def _write_owner(logdir, record):
    fd, staging = tempfile.mkstemp(prefix=OWNER_FILE + ".", dir=logdir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(staging, os.path.join(logdir, OWNER_FILE))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(staging)
        raise


def _refusal(logdir):
    owner = _owner(os.path.join(logdir, OWNER_FILE))
    if owner is None:  # locked a moment ago, its record not yet written
        who = "another process"
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
        who = f"process {owner['pid']} on host {owner['host']} (since {since})"
    return RunDirectoryLockedError(
        f"{logdir} is being written by {who}, which holds the lock on "
        f"{os.path.join(logdir, LOCK_FILE)}: wait for it to end or choose another --logdir"
    )


def _acquire(logdir):
    """`(descriptor holding the lock, this owner's record)`; RunDirectoryLockedError if held."""
    fd = _lock(os.path.join(logdir, LOCK_FILE))
    if fd is None:
        raise _refusal(logdir)
    try:
        previous = _owner(os.path.join(logdir, OWNER_FILE))
        if previous is not None:
            logging.warning(
                "%s: process %s on host %s ended without releasing it; taking it over",
                os.path.join(logdir, LOCK_FILE), previous["pid"], previous["host"],
            )  # fmt: skip
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "token": uuid.uuid4().hex,
        }
        _write_owner(logdir, record)
    except BaseException:
        os.close(fd)
        raise
    return fd, record


def _release(logdir, fd, record):
    """Removes this owner's record and the lock file while still holding the lock, then drops it."""
    try:
        path = os.path.join(logdir, OWNER_FILE)
        if (_owner(path) or {}).get("token") == record["token"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        path = os.path.join(logdir, LOCK_FILE)
        if _is_at(fd, path):
            os.remove(path)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(logdir):
    """`with locked(logdir) as lock_path:` this process owns `logdir` (see the module). A logdir
    it creates and leaves empty (a run refused before writing anything) is removed again."""
    created = not os.path.exists(logdir)
    os.makedirs(logdir, exist_ok=True)
    try:
        fd, record = _acquire(logdir)
    except BaseException:
        _remove_if_empty(logdir, created)
        raise
    try:
        yield os.path.join(logdir, LOCK_FILE)
    finally:
        _release(logdir, fd, record)
        _remove_if_empty(logdir, created)


def _remove_if_empty(logdir, created):
    if created:
        with contextlib.suppress(OSError):
            os.rmdir(logdir)  # only if empty
