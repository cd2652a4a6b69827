"""A run's checkpoints: found by their files, the newest good one restored, corrupt ones set aside.

Checkpoints are found by the `checkpoint` state file and by their own files (`ckpt-N.index`), so
a lost or emptied state file never restarts a run from step 0. Training and loading restore the
newest checkpoint that restores (`restore_latest_good`), skipping only a corrupt one
(`CorruptCheckpointError`: a failed checksum, an index or data file that is missing or truncated,
judged by TF's checksum and short-read errors and by the files themselves); any other failure (a
permission, an unavailable or exhausted filesystem, a checkpoint of another model) is one
`CheckpointError` and no older checkpoint is tried. Training sets a skipped checkpoint aside,
renamed `ckpt-N.corrupt-<time>` (never over another file), so that it is neither overwritten nor
deleted; metrics.json and the export metadata list it as `skipped_checkpoints`.
"""

import glob
import os
import re
import time

import tensorflow as tf
from absl import logging

CORRUPT = ".corrupt-"  # a corrupt checkpoint set aside: <prefix>.corrupt-<time>


class CheckpointError(ValueError):
    """A run directory or checkpoint is missing, incomplete, corrupt or incompatible."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The run directory, its config.json or its checkpoint does not exist."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint whose own files are damaged: truncated, missing or failing their checksums."""


def checkpoint_prefixes(directory):
    """The checkpoint prefixes in `directory`, newest (highest number) first: those its
    `checkpoint` state file lists and every `<name>-<N>.index` found by its files."""
    prefixes = {os.path.join(directory, os.path.basename(p)) for p in _state(directory)[0]}
    for index in glob.glob(os.path.join(glob.escape(directory), "*-*.index")):
        if re.fullmatch(r"[^.]+-\d+", os.path.basename(index)[: -len(".index")]):
            prefixes.add(index[: -len(".index")])
    return sorted(prefixes, key=lambda p: (_number(p), p), reverse=True)


def _number(prefix):
    tail = prefix.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _state(directory):
    """`(prefixes the state file lists, oldest first; {basename: save time}; the state)`."""
    try:
        state = tf.train.get_checkpoint_state(directory)
    except ValueError as e:  # an empty or truncated state file
        logging.warning("%s: %s; finding its checkpoints by their files", directory, e)
        state = None
    if state is None:
        return [], {}, None
    listed = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path not in listed:
        listed.append(state.model_checkpoint_path)
    times = zip(state.all_model_checkpoint_paths, state.all_model_checkpoint_timestamps)
    return listed, {os.path.basename(p): t for p, t in times}, state


# The last 8 bytes of an SSTable, the format of a checkpoint's index file (leveldb's table magic,
# little-endian), and the length of its footer: a shorter file or another ending is truncated.
_TABLE_MAGIC = bytes.fromhex("57fb808b247547db")
_TABLE_FOOTER = 48


def _damage(prefix, error):
    """What is wrong with the files of the checkpoint `prefix` that failed to restore with
    `error`; None when they look whole (then the failure is not corruption)."""
    chain = [error]
    while (chain[-1].__cause__ or chain[-1].__context__) not in (None, *chain):
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    if any(
        isinstance(e, tf.errors.DataLossError) or "checksum does not match" in str(e).lower()
        for e in chain
    ):  # TF reports some checksum failures with the code UNKNOWN
        return "a failed checksum"
    if any(
        isinstance(e, tf.errors.OutOfRangeError)
        or (isinstance(e, IndexError) and "Read less bytes than requested" in str(e))
        for e in chain
    ):
        return "a data file shorter than its index says"
    try:
        with open(prefix + ".index", "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - len(_TABLE_MAGIC), 0))
            magic = f.read()
    except FileNotFoundError:
        return "no index file"
    except OSError:
        return None  # it cannot be read now (permissions, the network): not known to be damaged
    if size < _TABLE_FOOTER or magic != _TABLE_MAGIC:
        return "a truncated index file"
    shards = glob.glob(glob.escape(prefix) + ".data-?????-of-?????")
    count = int(shards[0][-5:]) if shards else 1
    for i in range(count):
        try:
            os.stat(f"{prefix}.data-{i:05d}-of-{count:05d}")
        except FileNotFoundError:
            return "a missing data file"
        except OSError:
            pass
    return None


def restore(checkpoint, prefix, partial=False):
    """Restores `prefix` into `checkpoint`, turning TF's errors into one CheckpointError, a
    CorruptCheckpointError when the checkpoint's files are damaged."""
    try:
        status = checkpoint.restore(prefix)
        if partial:
            status = status.expect_partial()
        status.assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001 - TF reports corruption as IndexError, OpError, ...
        message = getattr(e, "message", None) or str(e)
        first_line = message.strip().splitlines()[0] if message.strip() else type(e).__name__
        damage = _damage(prefix, e)
        kind, what = (CheckpointError, "") if damage is None else (CorruptCheckpointError, damage)
        raise kind(
            f"{prefix}: cannot restore checkpoint{what and ': ' + what} "
            f"({type(e).__name__}: {first_line})"
        ) from e
    return status


def restore_latest_good(checkpoint, directory, partial=False, set_aside=False):
    """Restores the newest checkpoint of `directory` (`checkpoint_prefixes`) that restores,
    skipping with a warning each newer one that is corrupt (`CorruptCheckpointError`).

    With `set_aside` (training, which holds the run's lock) each skipped checkpoint is renamed
    `<prefix>.corrupt-<time>` and the state file is rewritten to list the checkpoints left (also
    when it was missing). Returns `(prefix, skipped)`, prefix None when there is no checkpoint;
    skipped is `[{checkpoint, set_aside_as, error}]`, newest first. Raises CheckpointError naming
    each checkpoint when none restores, and at once, changing nothing, on any failure that is not
    corruption.
    """
    prefixes = checkpoint_prefixes(directory)
    skipped = []
    for prefix in prefixes:  # newest first
        try:
            restore(checkpoint, prefix, partial)
        except CorruptCheckpointError as e:
            logging.warning("%s; trying the checkpoint before it", e)
            skipped.append((prefix, str(e)))
            continue
        except CheckpointError as e:
            raise CheckpointError(
                f"{e}. Its files look whole, so this is not taken for corruption: no older "
                "checkpoint was tried and nothing was changed; fix the cause (permissions, the "
                "filesystem, the model config) and run again"
            ) from e
        return prefix, _skipped(directory, prefixes, prefix, skipped, set_aside)
    if skipped:
        errors = "; ".join(error for _, error in skipped)
        raise CheckpointError(f"{directory}: no checkpoint restores: {errors}")
    return None, []


def _skipped(directory, prefixes, restored, skipped, set_aside):
    """The `skipped` records, their checkpoints set aside and the state rewritten if asked."""
    moved = [_set_aside(prefix) if set_aside else None for prefix, _ in skipped]
    for (prefix, _), target in zip(skipped, moved):
        if target:
            logging.warning("Set aside the corrupt checkpoint %s as %s", prefix, target)
    name = os.path.basename
    left = [p for p in reversed(prefixes) if p not in dict(skipped)]  # oldest first
    listed, times, state = _state(directory)
    if set_aside and (skipped or set(map(name, listed)) != set(map(name, left))):
        stamps = [times.get(name(p)) or os.path.getmtime(p + ".index") for p in left]
        tf.compat.v1.train.update_checkpoint_state(
            os.path.abspath(directory), name(restored), [name(p) for p in left],
            all_model_checkpoint_timestamps=stamps,
            last_preserved_timestamp=state.last_preserved_timestamp if state else min(stamps) - 1,
        )  # fmt: skip
    return [
        {"checkpoint": name(prefix), "set_aside_as": target and name(target), "error": error}
        for (prefix, error), target in zip(skipped, moved)
    ]


def _set_aside(prefix):
    """Renames the files of the checkpoint `prefix` to `<prefix>.corrupt-<time>[-n]`, a prefix no
    file has; returns it (None when no file is left)."""
    files = glob.glob(glob.escape(prefix) + ".index") + glob.glob(glob.escape(prefix) + ".data-*")
    if not files:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target, n = prefix + CORRUPT + stamp, 0
    while glob.glob(glob.escape(target) + ".*"):
        n += 1
        target = f"{prefix}{CORRUPT}{stamp}-{n}"
    for path in files:
        os.rename(path, target + path[len(prefix) :])
    return target


def set_aside_checkpoints(directory):
    """The prefixes' basenames of the checkpoints training set aside in `directory`, oldest
    first."""
    found = glob.glob(os.path.join(glob.escape(directory), f"*{CORRUPT}*.index"))
    return sorted(
        (os.path.basename(p)[: -len(".index")] for p in found),
        key=lambda p: (_number(p.split(".")[0]), p),
    )


def restore_for_inference(prefix_or_directory, **parts):
    """Restores the weights of `parts` (e.g. `model=...`) from a checkpoint prefix, or from the
    newest checkpoint of a directory that restores (`restore_latest_good`), without the optimizer.

    Returns `(the training step of the checkpoint, its prefix)`.
    """
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(step=step, **parts)
    if os.path.isdir(prefix_or_directory):
        prefix, _ = restore_latest_good(checkpoint, prefix_or_directory, partial=True)
    else:
        prefix = prefix_or_directory
        restore(checkpoint, prefix, partial=True)
    return int(step.numpy()), prefix


def saved_step(manager):
    """The step number of a CheckpointManager's latest checkpoint, None if there is none."""
    latest = manager.latest_checkpoint
    return None if latest is None else int(latest.rsplit("-", 1)[1])
