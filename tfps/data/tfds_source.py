"""Everything that reads `tensorflow_datasets`: preparing a builder (one clear
`DatasetUnavailableError` without network or data), the paper's splits of the built-in tfds sets
(`tfps.data.builtin` reads them through `paper_split`), and `tfds:NAME`, any tfds image dataset as
the user's own data (`open_tfds`).

`tfds:NAME`: the images are the feature `image_key` of the tfds dataset NAME, read from `data_dir`
as tfds does. Validation is the tfds `validation` split when the dataset has one, else the last
`validation_size` examples of tfds `train` (train is the rest; see `checks.carved_size` for the
default size); test is tfds `test`. Every split is read once when the source is opened, to count
it and check its values against K, before a run directory is written.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfps.data import checks
from tfps.data.checks import DataError, Opened

TFDS_PREFIX = "tfds:"
_SCAN_BATCH = 1024
_RANDOM_VALIDATION_SEED = 0


# ------------------------------------------------------------------------------ preparing builders


def prepared_builder(name, data_dir, offline=()):
    """`tfds.builder(name)` with its data downloaded and prepared, as `tfds.load` does it.

    Raises DatasetUnavailableError naming the way out, and the `offline` dataset names (the
    embedded sets of `tfps.data.builtin`) as alternatives."""
    builder = tfds.builder(name, data_dir=data_dir)
    try:
        builder.download_and_prepare()
    except OSError as error:  # requests' and urllib's network errors are OSErrors too
        raise checks.DatasetUnavailableError(_unavailable(name, builder, error, offline)) from error
    return builder


def _unavailable(name, builder, error, offline):
    """What failed in preparing a tfds dataset, and the way out: a network failure (no
    connection) or a local one (disk full, permissions) named as such."""
    cause = f"{type(error).__name__}: {error}"
    if isinstance(error, ConnectionError) or type(error).__module__.split(".")[0] in _NETWORK:
        cause = f"no network ({cause}). It needs a network connection for the first download"
    else:  # a local failure: disk full, permissions, a read-only data_dir
        cause = f"{cause}. Check that {builder.data_dir!r} can be written"
    return (
        f"tfds dataset {name!r} is not available in {builder.data_dir!r} and could not be "
        f"downloaded and prepared: {cause}; or point `data_dir` at a directory where it was "
        f"already prepared (`tfds.builder({name!r}, data_dir=...).download_and_prepare()`). "
        f"Offline alternatives embedded in tfps: {', '.join(map(repr, offline))}."
    )


# The packages whose OSErrors are network failures (requests' ConnectionError, urllib's URLError).
_NETWORK = ("requests", "urllib", "urllib3", "socket")


# ------------------------------------------------------------- the built-in tfds sets, paper splits


@dataclasses.dataclass(frozen=True)
class PaperSplits:
    """How the paper carves train / validation / test out of a tfds dataset's splits.

    `validation_from_train` is "last" (the last `num_validation` examples of tfds `train`) or
    "random" (a seeded random subset of that size); train is the rest of tfds `train`.
    """

    validation_from_train: str
    num_validation: int
    test_split: str = "test"


def _random_validation_mask(num_train, num_validation, seed=_RANDOM_VALIDATION_SEED):
    """Bool `[num_train]`: True at `num_validation` indices drawn without replacement."""
    chosen = np.random.default_rng(seed).choice(num_train, size=num_validation, replace=False)
    mask = np.zeros(num_train, dtype=bool)
    mask[chosen] = True
    return mask


def _examples_where(dataset, mask, selected, cardinality):
    """The examples of `dataset` at positions i with `mask[i] == selected`."""
    mask = tf.constant(mask)
    selected_examples = dataset.enumerate().filter(
        lambda index, example: tf.equal(tf.gather(mask, index), selected)
    )
    selected_examples = selected_examples.map(lambda index, example: example)
    return selected_examples.apply(tf.data.experimental.assert_cardinality(cardinality))


def _paper_examples(name, builder, splits, split):
    """The tfds examples (feature dicts) of our `split`, following `splits` (a `PaperSplits`)."""
    if split == "test":
        return builder.as_dataset(split=splits.test_split, shuffle_files=False)
    num_validation = splits.num_validation
    if splits.validation_from_train == "last":
        last, rest = f"train[-{num_validation}:]", f"train[:-{num_validation}]"
        tfds_split = last if split == "validation" else rest
        return builder.as_dataset(split=tfds_split, shuffle_files=False)

    if "train" not in builder.info.splits:
        raise checks.DatasetUnavailableError(
            f"the builder info of {name!r} in {builder.data_dir!r} records no 'train' split, so "
            f"its random validation subset cannot be drawn; prepare the dataset first"
        )
    num_train = builder.info.splits["train"].num_examples
    in_validation = _random_validation_mask(num_train, num_validation)
    # Interleaving one file at a time reads train in its canonical order; the mask indexes that.
    train = builder.as_dataset(
        split="train", shuffle_files=False, read_config=tfds.ReadConfig(interleave_cycle_length=1)
    )
    if split == "validation":
        return _examples_where(train, in_validation, True, num_validation)
    return _examples_where(train, in_validation, False, num_train - num_validation)


def paper_split(name, splits, split, data_dir, shift, offline=()):
    """Our `split` of the tfds dataset `name`, carved as `splits` (a `PaperSplits`) says: int32
    images (the feature `image`) shifted right by `shift` bits. Prepares the dataset first
    (`prepared_builder`; `offline` names the alternatives its error offers)."""
    examples = _paper_examples(name, prepared_builder(name, data_dir, offline), splits, split)
    return examples.map(
        lambda example: tf.bitwise.right_shift(tf.cast(example["image"], tf.int32), shift),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


# ------------------------------------------------------------------------------------ tfds:NAME


def _builder(name, data_dir, offline):
    try:
        tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # noqa: BLE001 - unknown names, bad versions, ...
        raise DataError(f"tfds:{name}: not a tfds dataset ({type(e).__name__}: {e})") from e
    return prepared_builder(name, data_dir, offline)


def _image_feature(builder, name, image_key):
    features = builder.info.features
    if image_key not in features:
        raise DataError(
            f"tfds:{name}: no feature {image_key!r} (features: {', '.join(features)}); set "
            f"image_key to the feature that holds the images"
        )
    feature = features[image_key]
    shape = tuple(feature.shape or ())
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or any(s is None for s in shape):
        raise DataError(
            f"tfds:{name}: feature {image_key!r} has shape {feature.shape}; images of one size "
            f"[H, W] or [H, W, C] are needed"
        )
    return shape


def _tfds_splits(builder, config, name):
    """`{split: tfds split string}` and the number n carved from tfds train (0: none)."""
    if "validation" in builder.info.splits:
        return {"train": "train", "validation": "validation", "test": "test"}, 0
    if "train" in builder.info.splits and builder.info.splits["train"].num_examples:
        num_train = builder.info.splits["train"].num_examples
    else:
        num_train = sum(1 for _ in _images(builder, "train", config.image_key, name))
    n = checks.carved_size(config, num_train)
    return {"train": f"train[:-{n}]", "validation": f"train[-{n}:]", "test": "test"}, n


def _images(builder, tfds_split, image_key, name):
    try:
        examples = builder.as_dataset(split=tfds_split, shuffle_files=False)
    except Exception as e:  # noqa: BLE001 - a missing split, a bad slice, ...
        raise DataError(
            f"tfds:{name}: cannot read split {tfds_split!r} ({type(e).__name__}: {e})"
        ) from e
    return examples.map(lambda example: example[image_key])


def _scan(dataset, shape, location, split, config, num_categories):
    """`(count, largest value)` of a split, checking every image on the way."""
    count, largest = 0, 0
    for batch in dataset.batch(_SCAN_BATCH).as_numpy_iterator():
        batch = batch.reshape((len(batch), *shape))
        batch = checks.checked_integers(batch, location, split, offset=count)
        if config.binarize is not None:
            batch = checks.binarized(batch, config.binarize, location, split, offset=count)
        if num_categories is not None:
            why = checks.why_below(config)
            checks.check_below(batch, num_categories, location, split, None, why, count)
        largest = max(largest, int(batch.max()) if batch.size else 0)
        count += len(batch)
    if count == 0:
        raise DataError(f"{location}: split {split!r} is empty")
    return count, largest


def open_tfds(config, offline=()):
    """The tfds dataset `config.dataset` (`tfds:NAME`), read once and checked. -> `Opened`.
    (`offline`: the alternatives a `DatasetUnavailableError` offers.)"""
    name = config.dataset[len(TFDS_PREFIX) :]
    builder = _builder(name, config.data_dir, offline)
    shape = _image_feature(builder, name, config.image_key)
    splits, carved = _tfds_splits(builder, config, name)
    explicit = config.binarize is not None or config.num_categories or config.bits
    num_categories, bits = checks.categories(config, 0) if explicit else (None, None)
    sizes = {}
    for split in checks.SPLITS:  # train first: K may come from its largest value
        images = _images(builder, splits[split], config.image_key, name)
        location = f"tfds:{name} ({splits[split]})"
        sizes[split], largest = _scan(images, shape, location, split, config, num_categories)
        if num_categories is None:
            num_categories, bits = checks.categories(config, largest)
    info = checks.DatasetInfo(config.dataset, shape, num_categories, bits)
    key, threshold = config.image_key, config.binarize

    def to_image(image):
        image = tf.reshape(tf.cast(image, tf.int32), shape)
        return image if threshold is None else tf.cast(image >= threshold, tf.int32)

    def load(split):
        images = _images(builder, splits[split], key, name)
        return images.map(to_image, num_parallel_calls=tf.data.AUTOTUNE)

    description = {
        "source": config.dataset,
        "kind": "tfds",
        "image_key": key,
        "split_sizes": sizes,
        "validation_carved_from_train": int(carved),
        "fingerprint": f"tfds {builder.info.full_name}",
        "binarize": threshold,
    }
    return Opened(info, load, description)
