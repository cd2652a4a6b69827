"""One training process per run directory: `<logdir>/.lock` names its owner.

Two processes training into one logdir would write the same checkpoints in turn. `locked(logdir)`
creates the lock file atomically (`O_EXCL`) with the owner's pid, host and start time, and removes
it when the run ends (also on an error). A lock whose owner is alive on this host, or whose owner
is on another host (whose processes this one cannot see), refuses the run with
`RunDirectoryLockedError` naming the owner and the file. A lock left by a process of this host
that is gone (killed, the machine restarted), or one that cannot be read, is taken over with a
warning.
"""

import contextlib
import json
import os
import socket
import time

from absl import logging

LOCK_FILE = ".lock"


class RunDirectoryLockedError(RuntimeError):
    """Another live process is training into the run directory."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner(path):
    """The lock's `{pid, host, started}`, or None for a file that cannot be read as one."""
    try:
        with open(path) as f:
            owner = json.load(f)
        return owner if isinstance(owner.get("pid"), int) and owner.get("host") else None
    except (OSError, ValueError, AttributeError):
        return None


def _write(path, exclusive):
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    if exclusive:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        return
    staging = f"{path}.{os.getpid()}"
    with open(staging, "w") as f:
        json.dump(record, f)
    os.replace(staging, path)


def _acquire(path, logdir):
    try:
        _write(path, exclusive=True)
        return
    except FileExistsError:
        pass
    owner = _owner(path)
    if owner is not None and (owner["host"] != socket.gethostname() or _alive(owner["pid"])):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
        raise RunDirectoryLockedError(
            f"{logdir} is being written by process {owner['pid']} on host {owner['host']} "
            f"(since {since}): wait for it to end, choose another --logdir, or remove {path} "
            "if that process is gone"
        )
    what = "unreadable" if owner is None else f"left by process {owner['pid']}, which is gone"
    logging.warning("Taking over the lock %s (%s)", path, what)
    _write(path, exclusive=False)


@contextlib.contextmanager
def locked(logdir):
    """`with locked(logdir):` this process owns `logdir` (see the module). A logdir it creates
    and leaves empty (a run refused before writing anything) is removed again."""
    created = not os.path.exists(logdir)
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, LOCK_FILE)
    try:
        _acquire(path, logdir)
    except BaseException:
        _remove_if_empty(logdir, created)
        raise
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        _remove_if_empty(logdir, created)


def _remove_if_empty(logdir, created):
    if created:
        with contextlib.suppress(OSError):
            os.rmdir(logdir)  # only if empty
