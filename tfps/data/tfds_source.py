"""`tfds:NAME`: any tfds image dataset as the user's own data (`tfps.data.sources`).

The images are the feature `image_key` of the tfds dataset NAME, read from `data_dir` as tfds
does. Validation is the tfds `validation` split when the dataset has one, else the last
`validation_size` examples of tfds `train` (train is the rest; see `data_checks.carved_size` for
the default size); test is tfds `test`. Every split is read once when the source is opened, to
count it and check its values against K, before a run directory is written.
"""

import tensorflow as tf
import tensorflow_datasets as tfds

from tfps.data import builtin as tfps_data
from tfps.data import checks
from tfps.data.checks import DataError, Opened

TFDS_PREFIX = "tfds:"
_SCAN_BATCH = 1024


def _builder(name, data_dir):
    try:
        tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # noqa: BLE001 - unknown names, bad versions, ...
        raise DataError(f"tfds:{name}: not a tfds dataset ({type(e).__name__}: {e})") from e
    return tfps_data.prepared_builder(name, data_dir)


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


def open_tfds(config):
    """The tfds dataset `config.dataset` (`tfds:NAME`), read once and checked. -> `Opened`."""
    name = config.dataset[len(TFDS_PREFIX) :]
    builder = _builder(name, config.data_dir)
    shape = _image_feature(builder, name, config.image_key)
    splits, carved = _tfds_splits(builder, config, name)
    explicit = config.binarize is not None or config.num_categories or config.bits
    num_categories, bits = checks.categories(config, 0) if explicit else (None, None)
    sizes = {}
    for split in tfps_data.SPLITS:  # train first: K may come from its largest value
        images = _images(builder, splits[split], config.image_key, name)
        location = f"tfds:{name} ({splits[split]})"
        sizes[split], largest = _scan(images, shape, location, split, config, num_categories)
        if num_categories is None:
            num_categories, bits = checks.categories(config, largest)
    info = tfps_data.DatasetInfo(config.dataset, shape, num_categories, bits)
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
