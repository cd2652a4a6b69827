"""The run directory that every trainer writes and every loader reads.

    <logdir>/config.json          the run's config: format, train (the typed config), model,
                                  dataset [, forecast]
    <logdir>/checkpoints/ckpt-N   tf.train.Checkpoint(step, model, optimizer, ...)
    <logdir>/train/, validation/, test/   TensorBoard event files
    <logdir>/metrics.json         the final metrics of the last session
    <logdir>/.lock, .lock.owner   while a training process runs (`tfps.train.run_lock`)

Files are written atomically (a killed run never leaves half a file), a run directory that holds
another model or dataset is refused instead of mixed (`check_compatible`), and TensorFlow's many
ways of failing on a missing or corrupt checkpoint become one `CheckpointError` naming the path.

Checkpoints themselves (finding them, restoring the newest good one, setting a corrupt one
aside) are `tfps.train.checkpoints`'s.
"""

import json
import os

import numpy as np

from tfps.train import checkpoints
from tfps.train.checkpoints import (  # noqa: F401 (raised here too; public names)
    CheckpointError,
    CheckpointNotFoundError,
)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


class ConfigConflictError(ValueError):
    """A trainer was pointed at a run directory that holds a different model or dataset."""


def write_json(path, value):
    """Writes `value` as indented, key-sorted JSON to `path`, atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    """The JSON value in `path`, None if it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_config(logdir):
    """Parses `logdir/config.json`; raises CheckpointNotFoundError / CheckpointError."""
    path = os.path.join(logdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"{path}: no such file (is {logdir} a tfps training run?)")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid tfps config ({type(e).__name__}: {e})") from e
    missing = [
        k for k in ("train", "model", "dataset") if not isinstance(config, dict) or k not in config
    ]
    if missing:
        raise CheckpointError(f"{path}: not a valid tfps config (missing {', '.join(missing)})")
    return config


def check_compatible(existing, new, path, full_model_config=dict):
    """Raises ConfigConflictError if two run configs describe different models or data.

    Training hyperparameters (steps, learning rate, ...) may change between sessions; what the
    weights mean (architecture, data and its quantisation) may not. `full_model_config` fills in
    the defaults of model arguments that older runs did not record.
    """
    problems = []
    for section in ("format", "model", "dataset", "forecast"):
        old_s, new_s = existing.get(section) or {}, new.get(section) or {}
        if section == "format":
            old_s, new_s = {"format": old_s}, {"format": new_s}
        elif section == "model":
            old_s, new_s = full_model_config(old_s), full_model_config(new_s)
        for key in sorted(set(old_s) | set(new_s)):
            if old_s.get(key) != new_s.get(key):
                problems.append(
                    f"{section}.{key}: {old_s.get(key)!r} in the run, {new_s.get(key)!r} requested"
                )
    if problems:
        raise ConfigConflictError(
            f"{path} belongs to a different run; refusing to mix checkpoints. Conflicts: "
            + "; ".join(problems)
            + ". Use a new --logdir or the original settings."
        )


def start_run(logdir, run_config, full_model_config=dict):
    """Creates `logdir` and writes its config.json, refusing a directory of another run."""
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, CONFIG_FILE)
    if os.path.exists(path):
        check_compatible(read_config(logdir), run_config, path, full_model_config)
    write_json(path, run_config)


def dataset_description(info):
    """The `dataset` section of config.json for a `tfps.data.builtin.DatasetInfo`."""
    return {
        "name": info.name,
        "image_shape": [int(s) for s in info.image_shape],
        "num_categories": int(info.num_categories),
        "bits": None if info.bits is None else int(info.bits),
        "num_variables": int(np.prod(info.image_shape)),
    }


def resolve_checkpoint(path):
    """`(logdir, checkpoint prefix)` for a run directory or a checkpoint prefix."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, CONFIG_FILE)):
            logdir, ckpt_dir = path, os.path.join(path, CHECKPOINT_DIR)
        elif os.path.basename(path) == CHECKPOINT_DIR:
            logdir, ckpt_dir = os.path.dirname(path), path
        else:
            raise CheckpointNotFoundError(
                f"{path}: no {CONFIG_FILE} here; not a tfps run directory"
            )
        prefix = next(iter(checkpoints.checkpoint_prefixes(ckpt_dir)), None)
        if prefix is None:
            raise CheckpointNotFoundError(
                f"{ckpt_dir}: no checkpoint found (has training saved one yet?)"
            )
        return logdir, prefix
    if os.path.isfile(path + ".index"):
        ckpt_dir = os.path.dirname(path)
        logdir = (
            ckpt_dir
            if os.path.isfile(os.path.join(ckpt_dir, CONFIG_FILE))
            else os.path.dirname(ckpt_dir)
        )
        return logdir, path
    if os.path.isfile(path) and path.endswith(".index"):
        return resolve_checkpoint(path[: -len(".index")])
    raise CheckpointNotFoundError(f"{path}: no such run directory or checkpoint prefix")


def training_metadata(config, logdir):
    """The `training` metadata of a run's export (`tfps.serving.export`): dataset, step, the
    final bpd when they match, and the checkpoints training set aside as corrupt."""
    path = os.path.join(logdir, METRICS_FILE)
    metrics = read_json(path) if os.path.exists(path) else {}
    if not isinstance(metrics, dict):
        raise CheckpointError(
            f"{path}: not a valid metrics file (corrupt or truncated JSON); delete it to export "
            "without the measured bpd, or train again to rewrite it"
        )
    step = config.get("step")
    same = metrics.get("step") == step
    return {
        "dataset": config.get("dataset"),
        "train_config": config.get("train"),
        "step": step,
        "checkpoint": os.path.basename(config.get("checkpoint") or "") or None,
        # metrics.json describes the final checkpoint; an older one has no measured bpd.
        "test_bpd": metrics.get("test_bpd") if same else None,
        "validation_bpd": metrics.get("validation_bpd") if same else None,
        # Every checkpoint training found corrupt, in any session (`restore_latest_good`).
        "skipped_checkpoints": checkpoints.set_aside_checkpoints(
            os.path.join(logdir, CHECKPOINT_DIR)
        ),
    }


def described(model_config):
    """The model config for the log, a family's orderings by name (not d positions each)."""
    if "orderings" not in model_config:
        return model_config
    names = [o.get("name") or f"ordering {i}" for i, o in enumerate(model_config["orderings"])]
    return {**model_config, "orderings": names}
