"""Where examples come from: a built-in set (`tfps.data.builtin`) or your own data, a tfds image
dataset, an `.npz` file or a folder of images, checked before use. Open data with `tfps.data.open`
(`tfps.data.entry`), the one entry; `open_examples` is its part for images and sequences.

The `dataset` field of a run names one of `tfps.data.builtin.DATASETS`, or the user's own data:

  * `tfds:NAME` (e.g. `tfds:fashion_mnist`): any tfds image dataset, the images under the feature
    `image_key` (default `image`), read from `data_dir` as tfds does. Validation is the tfds
    `validation` split when there is one, else the last `validation_size` examples of tfds
    `train` (train is the rest); test is tfds `test`.
  * a path to an `.npz` file holding integer arrays `train` and optionally `validation` and
    `test`: images, each `[N, H, W]` or `[N, H, W, C]`, or sequences, each `[N, L]` (event shape
    `(L,)`, for the sequence ARMs of `tfps.models.arms`: `conv1d`, `transformer`, `made`; a PixelCNN
    models images only). All splits have one layout. A missing split is carved from `train`
    with the fixed permutation `np.random.default_rng(0).permutation(N)`: its first n indices are
    test (when missing), the next n validation (when missing), the rest train; each split keeps
    the file's order.
  * a directory of PNG / JPEG images (`.png`, `.jpg`, `.jpeg`; grey or RGB, all one size), split
    by a hash of the file name: the first byte of sha256(name) modulo 10 is 0 for test, 1 for
    validation, anything else for train (about 10% / 10% / 80%).

`validation_size` n (None: 10% of train, at least 1 and at most 5000) is the size of a carved
split. Categories: `num_categories` K, or `bits` (K = 2**bits; the values must already be below
K, nothing is shifted), or, when neither is given, the smallest bit depth that holds the largest
training value. `binarize` T maps 8-bit grey levels to {0, 1} by x >= T (binary-MNIST style),
K = 2.

All data is read and checked when the source is opened, before a run directory is written: a
non-integer or negative value, a value >= K, mixed image sizes or sequence lengths, an empty
split, a missing array or an unreadable file is one `DataError` naming the file, split and first
offending image (pixel) or sequence (position); so is a model that does not fit the data
(`tfps.data.open`: e.g. a PixelCNN on sequences). The run's config.json records the source, sizes
per split, K, the event shape (`image_shape`: `[H, W, C]` or `[L]`) and a fingerprint (a sha256
of the `.npz` file or of the image files with their names; the tfds version), so a run whose
data changed is refused (`tfps.train.rundir.check_compatible`) and sampling, benchmarks and exports
need no data flags.
"""

import collections
import hashlib
import os

import numpy as np
import tensorflow as tf

from tfps.data import builtin as tfps_data
from tfps.data import checks, image_files, text, tfds_source
from tfps.data.checks import DataError, Opened

TFDS_PREFIX = tfds_source.TFDS_PREFIX
check_categories = checks.check_categories  # bits, num_categories, binarize together
ARRAY_SPLITS = checks.SPLITS
CARVE_SEED = 0


def is_user_source(name):
    """Whether the dataset `name` is the user's own data (`tfds:NAME`, an `.npz` path, a folder)."""
    if not isinstance(name, str) or name in tfps_data.DATASETS:
        return False
    if name.startswith(TFDS_PREFIX):
        return len(name) > len(TFDS_PREFIX)
    return name.endswith(".npz") or os.path.isdir(name)


def open_examples(config):
    """The examples of a run config's dataset (`tfps.train.config.RunConfig`): a built-in set or
    the user's own data, read and checked here (DataError for bad data, see the module docstring).
    The part of `tfps.data.open` before its model check, and what the latent source encodes."""
    if not is_user_source(config.dataset):

        def load(split):
            return tfps_data.load(config.dataset, split, config.bits, config.data_dir)[0]

        described = text.description() if config.dataset == text.NAME else {}
        return Opened(tfps_data.dataset_info(config.dataset, config.bits), load, described)
    if config.dataset.startswith(TFDS_PREFIX):
        return tfds_source.open_tfds(config, offline=tfps_data.EMBEDDED_DATASETS)
    if os.path.isdir(config.dataset):
        splits, names, fingerprint = image_files.read_folder(config.dataset)
        kind = "folder"
    else:
        splits, names, fingerprint = _read_npz(config.dataset)
        kind = "npz"
    return _open_arrays(config, kind, splits, names, fingerprint)


# ------------------------------------------------------------------------------- npz and folders


def _read_npz(path):
    """`({split: array}, None, sha256)` of an .npz file; DataError when it cannot be used."""
    found, fingerprint = _npz_arrays(path)
    return _npz_splits(found, path), None, fingerprint


def _npz_arrays(path):
    """`({name: array}, sha256)`: every array of an .npz file; DataError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            content = f.read()
        with np.load(path, allow_pickle=False) as arrays:
            found = {name: arrays[name] for name in arrays.files}
    except Exception as e:  # noqa: BLE001 - missing, unreadable, not a zip, pickled objects, ...
        raise DataError(f"{path}: cannot read the .npz file ({type(e).__name__}: {e})") from e
    return found, "sha256:" + hashlib.sha256(content).hexdigest()


def _npz_splits(found, path):
    """`{split: array}` of the arrays of an .npz dataset; DataError when they cannot be used."""
    if "train" not in found:
        raise DataError(
            f"{path}: no array 'train' (arrays: {', '.join(sorted(found)) or 'none'}); an .npz "
            f"dataset holds 'train' and optionally 'validation' and 'test'"
        )
    splits = {}
    for split in ARRAY_SPLITS:
        if split not in found:
            continue
        array = found[split]
        if array.ndim == 3:
            array = array[..., np.newaxis]
        if array.ndim not in (2, 4):
            raise DataError(
                f"{path}: array {split!r} has shape {array.shape}; an .npz holds images [N, H, W] "
                f"or [N, H, W, C], or sequences [N, L]"
            )
        splits[split] = array
    return splits


def npz_labels(path):
    """`({split: images}, {split: labels})` of an .npz dataset: its splits (`_read_npz`) and the
    labels of those that hold an int array `<split>_labels` `[N]` (a class >= 0 per example, e.g.
    for the Frechet distance of `tfps.evaluation.frechet`). DataError for labels that are not one
    non-negative integer per example."""
    arrays, _ = _npz_arrays(path)
    splits = _npz_splits(arrays, path)
    found = {s: arrays[f"{s}_labels"] for s in splits if f"{s}_labels" in arrays}
    for split, labels in found.items():
        count = len(splits[split])
        if (
            labels.shape != (count,)
            or not np.issubdtype(labels.dtype, np.integer)
            or (count and labels.min() < 0)
        ):
            raise DataError(
                f"{path}: {split}_labels must hold one integer class >= 0 per example of "
                f"{split!r} ({count}), got {labels.dtype} {list(labels.shape)}"
            )
    return splits, {split: labels.astype(np.int32) for split, labels in found.items()}


Labelled = collections.namedtuple("Labelled", ["images", "labels", "num_categories", "what"])


def labelled(dataset, num_categories=None):
    """The labelled images of `dataset` that a sample-quality measure trains its classifier on
    (`tfps.evaluation.frechet.scorer`), or a note (str) saying why there are none.

    `Labelled(images, labels, num_categories, what)`: images `{split: int [N, H, W, C]}` of every
    split, labels `{"train", "test": int32 [N]}`, the levels K of the images and what a label
    names. From an embedded labelled set (`tfps.data.builtin.LABELLED_DATASETS`: the digit of the
    digits sets, the source photograph of `photos32`) or an .npz with `train_labels` and
    `test_labels` (`npz_labels`), whose values must be the run's levels `num_categories`."""
    if dataset in tfps_data.LABELLED_DATASETS:
        images = {split: tfps_data.load_numpy(dataset, split)[0] for split in tfps_data.SPLITS}
        labels = {split: tfps_data.labels(dataset, split) for split in ("train", "test")}
        what = "source-photograph" if dataset == "photos32" else "digit"
        return Labelled(images, labels, tfps_data.dataset_info(dataset).num_categories, what)
    if not (isinstance(dataset, str) and dataset.endswith(".npz")):
        return f"no Frechet distance: {dataset} has no embedded labels"
    images, labels = npz_labels(dataset)
    if not {"train", "test"} <= set(labels):
        return f"no Frechet distance: {dataset} has no train_labels and test_labels"
    top = max(int(np.max(split)) for split in images.values())
    if num_categories is None or top >= num_categories:
        return (
            f"no Frechet distance: {dataset}'s values (up to {top}) are not the run's levels "
            f"({num_categories}): the run reduced the bit depth"
        )
    return Labelled(images, labels, num_categories, f"{os.path.basename(dataset)}-label")


def _check_shapes(splits, location):
    shapes = {split: array.shape[1:] for split, array in splits.items()}
    if len(set(shapes.values())) > 1:
        ranks = {len(shape) for shape in shapes.values()}
        what = "sequence lengths" if ranks == {1} else "image sizes"
        if len(ranks) > 1:
            what = "layouts (images [N, H, W, C] and sequences [N, L] do not mix):"
        raise DataError(f"{location}: the splits have different {what} {shapes}")
    for split, array in splits.items():
        if len(array) == 0:
            raise DataError(f"{location}: split {split!r} is empty")


def _carve(splits, config):
    """The three splits, the missing ones carved from train (see the module docstring)."""
    missing = [split for split in ("test", "validation") if split not in splits]
    if not missing:
        return splits
    train = splits["train"]
    n = checks.carved_size(config, len(train))
    order = np.random.default_rng(CARVE_SEED).permutation(len(train))
    result, start = dict(splits), 0
    for split in missing:
        result[split] = train[np.sort(order[start : start + n])]
        start += n
    result["train"] = train[np.sort(order[start:])]
    return result


def _open_arrays(config, kind, splits, names, fingerprint):
    location = os.path.abspath(config.dataset)
    checked, names = {}, names or {}
    for split, array in splits.items():
        array = checks.checked_integers(array, location, split, names.get(split))
        if config.binarize is not None:
            array = checks.binarized(array, config.binarize, location, split, names.get(split))
        checked[split] = array
    _check_shapes(checked, location)
    num_categories, bits = checks.categories(config, checked["train"].max())
    why = checks.why_below(config)
    for split, array in checked.items():
        checks.check_below(array, num_categories, location, split, names.get(split), why)
    checked = _carve(checked, config)
    _check_shapes(checked, location)
    info = checks.DatasetInfo(
        config.dataset, tuple(int(s) for s in checked["train"].shape[1:]), num_categories, bits
    )
    arrays = {split: array.astype(np.int32) for split, array in checked.items()}
    description = {
        "source": location,
        "kind": kind,
        "split_sizes": {split: int(len(arrays[split])) for split in ARRAY_SPLITS},
        "fingerprint": fingerprint,
        "binarize": config.binarize,
    }

    def load(split):
        return tf.data.Dataset.from_tensor_slices(arrays[split])

    return Opened(info, load, description)
