"""Writing tfps SavedModels in versions, and reading them back.

An export is a TF Serving style directory `<base>/<version>/` (`<base>` is usually
`exported/<name>`, versions are positive integers, a new export takes max + 1). It needs nothing
but TensorFlow to load: no tfps, no Keras, no TFP. Its signatures, inputs and outputs are those of
the serving contract, one table in `tfps.serving.contract` (rendered in docs/serving.md); the object
saved is a `tfps.serving.module.ServingModule`. Through the `sample` signature, `sample(seed=[0, s],
batch_size=b, method=m)` equals `sampler.sample_from_seed(s, b, m)` in the library, and every
method returns the ancestral sample for the same noise [1, eq. 8].

The sampling signatures make plain or incremental ARM calls (`tfps.sampling.incremental`: the same
samples and calls, less work per call): False (the default) makes plain calls, True incremental
ones, and "auto" times both on the model and keeps the faster (`tfps.serving.incremental_choice`);
the contract is the same. The default is deterministic: the same checkpoint always gives the same
graph; "auto" depends on the machine and its load when asked for.

Metadata (image shape, K, ordering, methods, training dataset and bpd, versions, the incremental
choice, the contract with concrete shapes) is stored twice, both readable without tfps: the asset
file `assets/tfps_metadata.json` (plain JSON, no TensorFlow needed) and the `metadata` signature.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfps.serving import incremental_choice
from tfps.serving import module as module_lib
from tfps.train import rundir

METADATA_ASSET = "tfps_metadata.json"
_VERSION_DIR = re.compile(r"^[1-9][0-9]*$")


# ----------------------------------------------------------------------------- writing


def save(module, directory):
    """Writes `module` (a `ServingModule`) as a SavedModel to `directory` (must not exist)."""
    if os.path.exists(directory):
        raise FileExistsError(f"{directory} already exists")
    staging = tempfile.mkdtemp(prefix="tfps_metadata_")
    try:
        asset_path = os.path.join(staging, METADATA_ASSET)
        with open(asset_path, "w") as f:
            f.write(module.metadata_json + "\n")
        module.metadata_asset = tf.saved_model.Asset(asset_path)
        tf.saved_model.save(module, directory, signatures=module.signatures())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def list_versions(base):
    """Sorted integer versions `v` with a SavedModel in `base/v`."""
    if not os.path.isdir(base):
        return []
    return sorted(
        int(v)
        for v in os.listdir(base)
        if _VERSION_DIR.match(v) and os.path.isfile(os.path.join(base, v, "saved_model.pb"))
    )


def _next_version(base):
    if not os.path.isdir(base):
        return 1
    return max((int(v) for v in os.listdir(base) if _VERSION_DIR.match(v)), default=0) + 1


def export_model(
    model,
    base,
    version=None,
    overwrite=False,
    metadata=None,
    sampler=None,
    forecasters=None,
    jit_compile=False,
    decoder=None,
    incremental=False,
):
    """Exports `model` to `base/<version>` and returns that path.

    `version=None` takes the next free number (max + 1, starting at 1). An explicit version that
    exists is an error unless `overwrite`. `metadata` is merged into the export's metadata;
    `sampler`, `forecasters`, `jit_compile` and `decoder` are passed to
    `tfps.serving.module.ServingModule`. `incremental` (False, True, "auto"): whether the sampling
    signatures make incremental ARM calls, decided (for "auto": timed, see
    `tfps.serving.incremental_choice`) before anything is written and recorded as the metadata's
    `incremental`; True on a model without row bands is a ValueError. With a `sampler` of your
    own, its calls are kept (True is refused). The SavedModel is written to a hidden
    staging directory next to the versions and renamed into place at the end, so a failed export
    leaves no partial version and never touches the versions already there (TF Serving ignores
    non-integer names).
    """
    if version is not None and (not isinstance(version, (int, np.integer)) or version < 1):
        raise ValueError(f"version must be an integer >= 1, got {version!r}")
    choice = incremental_choice.choose(model, incremental, jit_compile, sampler=sampler)
    os.makedirs(base, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=base)
    try:
        module = module_lib.ServingModule(
            model,
            metadata={**dict(metadata or {}), "incremental": choice},
            sampler=sampler,
            forecasters=forecasters,
            jit_compile=jit_compile,
            decoder=decoder,
            incremental=choice["used"] and sampler is None and (choice["rows"] or True),
        )
        written = save(module, os.path.join(staging, "model"))
        if version is None:
            while True:  # the version number is the directory name only, so it is chosen last
                target = os.path.join(base, str(_next_version(base)))
                try:
                    os.rename(written, target)
                    return target
                except OSError:
                    if not os.path.exists(target):
                        raise  # a concurrent export took the number: try the next one
        target = os.path.join(base, str(int(version)))
        if os.path.exists(target):
            if not overwrite:
                raise FileExistsError(
                    f"{target} already exists (pass overwrite=True / --overwrite to replace it)"
                )
            replaced = os.path.join(staging, "replaced")
            os.rename(target, replaced)
            try:
                os.rename(written, target)
            except OSError:
                os.rename(replaced, target)  # put the old version back before failing
                raise
            return target
        os.rename(written, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_trained(
    model_path,
    export_root="exported",
    name=None,
    version=None,
    overwrite=False,
    jit_compile=False,
    incremental=False,
):
    """Exports a training run (`logdir` or checkpoint prefix) to `export_root/<name>/<version>`.

    `name` defaults to the run's dataset name (`default_name`); `incremental` as for
    `export_model`. Returns the version directory.
    """
    # Imported here: loading an export must not need the training stack.
    from tfps.sampling import forecasters as forecasters_lib
    from tfps.serving import decoder as decoder_lib
    from tfps.train import training

    model, config = training.load_trained(model_path)
    info = rundir.training_metadata(config, config["logdir"])
    name = name or default_name(info["dataset"])
    if not re.match(r"^[A-Za-z0-9_.-]+$", name) or name.startswith("."):
        raise ValueError(
            f"name must be a plain directory name (letters, digits, _ . -), got {name!r}"
        )
    return export_model(
        model,
        os.path.join(export_root, name),
        version=version,
        overwrite=overwrite,
        jit_compile=jit_compile,
        incremental=incremental,
        metadata={"name": name, "training": info},
        forecasters=forecasters_lib.learned_forecasters(config.get("forecast_heads")),
        decoder=decoder_lib.decoder_for(config),
    )


def default_name(dataset):
    """The export name of a run on the data of a config.json `dataset` section: the dataset's
    name; for your own `.npz` file or folder (`kind`) its base name without `.npz`
    (`data/tunes.npz` -> `tunes`); other characters than letters, digits and `_ . -` become `_`
    (`imagenet_resized/32x32` -> `imagenet_resized_32x32`)."""
    dataset = dataset or {}
    name = dataset.get("name") or "model"
    if dataset.get("kind") in ("npz", "folder"):
        name = os.path.basename(name.rstrip("/"))
        name = name[: -len(".npz")] if name.endswith(".npz") else name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "model"


# ----------------------------------------------------------------------------- loading


def is_export(path):
    """True if `path` is a SavedModel directory or a base directory holding versions of one."""
    path = os.fspath(path)
    return os.path.isfile(os.path.join(path, "saved_model.pb")) or bool(list_versions(path))


def resolve_export(path):
    """`base/<version>` for a version directory, or the latest version of a base directory."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"{path}: not a SavedModel directory and holds no numbered versions of one"
        )
    return os.path.join(path, str(versions[-1]))


def default_samples_dir(path):
    """Where `launch/sample.py` writes samples of an export by default (never inside the export):
    `runs/samples/<name>_v<version>`; None if `path` is not an export."""
    if not is_export(path):
        return None
    directory = os.path.abspath(resolve_export(path))
    name = os.path.basename(os.path.dirname(directory))
    return os.path.join("runs", "samples", f"{name}_v{os.path.basename(directory)}")


def read_metadata(path):
    """The metadata dict of an export (from its asset file; no graph is loaded)."""
    directory = resolve_export(path)
    metadata = rundir.read_json(os.path.join(directory, "assets", METADATA_ASSET))
    if metadata is None:
        raise ValueError(f"{directory}: no readable assets/{METADATA_ASSET}; not a tfps export")
    return metadata
