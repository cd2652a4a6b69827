"""Checks of the user's data (`tfps.sources`): each bad value becomes one `DataError` naming the
file, split, first offending image and pixel; and the categories K the data is modelled with."""

import dataclasses

import numpy as np

from tfps import data as tfps_data

DataError = tfps_data.DataError
MAX_CARVED = 5000
MAX_BITS = 16


@dataclasses.dataclass(frozen=True)
class Opened:
    """An opened dataset: its `info` (a `tfps.data.DatasetInfo`), `load(split)` -> a dataset of
    single int32 images `[H, W, C]`, and the entries config.json's `dataset` section adds."""

    info: tfps_data.DatasetInfo
    load: object
    description: dict


def where(location, split, index, names=None):
    """`"<location>: split 'train', image 3 (<file>)"`: the words that name a bad image."""
    file = f" ({names[index]})" if names is not None else ""
    return f"{location}: split {split!r}, image {index}{file}"


def first_true(mask):
    """`(image index, pixel tuple)` of the first True of a bool `[N, ...]` array."""
    flat = int(np.argmax(mask.reshape(-1)))
    position = np.unravel_index(flat, mask.shape)
    return int(position[0]), tuple(int(p) for p in position[1:])


def checked_integers(array, location, split, names=None, offset=0):
    """`array` as int64 `[N, H, W, C]`; DataError for a non-integer or negative value."""
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (np.round(array) != array)
        if bad.any():
            index, pixel = first_true(bad)
            raise DataError(
                f"{where(location, split, index + offset, names)}, pixel {pixel}: value "
                f"{array[(index, *pixel)]!r} is not an integer; pixel values must be integers"
            )
    elif array.dtype.kind not in "biu":
        raise DataError(
            f"{location}: split {split!r} has values of type {array.dtype}; pixel values must be "
            f"integers"
        )
    array = array.astype(np.int64)
    if (array < 0).any():
        index, pixel = first_true(array < 0)
        raise DataError(
            f"{where(location, split, index + offset, names)}, pixel {pixel}: value "
            f"{array[(index, *pixel)]} is negative; pixel values must be >= 0"
        )
    return array


def check_below(array, num_categories, location, split, names=None, why="", offset=0):
    """DataError unless every value of `array` is below `num_categories`."""
    if array.size and array.max() >= num_categories:
        index, pixel = first_true(array >= num_categories)
        raise DataError(
            f"{where(location, split, index + offset, names)}, pixel {pixel}: value "
            f"{array[(index, *pixel)]} is not below K = {num_categories}{why}"
        )


def check_categories(config):
    """ValueError unless the config's `bits`, `num_categories` and `binarize` fit together."""
    if config.bits is not None and not 1 <= config.bits <= MAX_BITS:
        raise ValueError(f"bits must lie in 1..{MAX_BITS} (or None), got {config.bits!r}")
    if config.bits is not None and config.num_categories is not None:
        raise ValueError("give bits or num_categories, not both")
    if config.binarize is not None and (config.bits or 1, config.num_categories or 2) != (1, 2):
        raise ValueError("binarize makes K = 2: leave bits and num_categories unset")


def categories(config, train_max):
    """`(K, bits)` from the config's `binarize` / `num_categories` / `bits`, else the smallest
    bit depth holding `train_max`. (`bits` is None where K is not a power of two.)"""
    if config.binarize is not None:
        return 2, 1
    if config.num_categories is not None:
        k = int(config.num_categories)
        return k, (k.bit_length() - 1 if k & (k - 1) == 0 else None)
    bits = config.bits if config.bits is not None else max(1, int(train_max).bit_length())
    return 2**bits, bits


def binarized(array, threshold, location, split, names=None, offset=0):
    """`array >= threshold` as 0 / 1, after checking the values are 8-bit grey levels."""
    why = "; binarize needs 8-bit grey levels 0..255"
    check_below(array, 256, location, split, names, why, offset)
    return (array >= threshold).astype(np.int64)


def why_below(config):
    if config.num_categories is not None:
        return f" (num_categories={config.num_categories})"
    if config.bits is not None:
        return f" (bits={config.bits}; values are not shifted, reduce them before)"
    return " (K from the largest training value)"


def carved_size(config, num_train):
    """The size n of a split carved from `num_train` training examples."""
    if config.validation_size is not None:
        return int(config.validation_size)
    return min(MAX_CARVED, max(1, num_train // 10))
