"""Checks of the user's data (`tfps.data.sources`): each bad value becomes one `DataError` naming
the file, split, first offending example and its position; the categories K the data is modelled
with; and what every source gives (`DatasetInfo`, `Opened`, the `SPLITS`).

An array of examples is images `[N, H, W, C]` (the words: "image", "pixel") or sequences `[N, L]`
("sequence", "position").
"""

import dataclasses
import math

import numpy as np

SPLITS = ("train", "validation", "test")
MAX_CARVED = 5000
BUILTIN_MAX_BITS = 8  # the built-in datasets' native bit depth (`tfps.data.builtin`)
MAX_BITS = 16  # the deepest integer data of your own that tfps models (`tfps.data.sources`)


class DatasetUnavailableError(RuntimeError):
    """A tfds dataset could not be downloaded or prepared (no network, nothing in `data_dir`)."""


class DataError(ValueError):
    """The user's data cannot be used (`tfps.data.sources`); names file, split and example."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset: the shape of one example (`image_shape`, the
    ARM's event shape: `(H, W, C)` images, `(L,)` text) and K categories.

    `bits` is the bit depth after reduction (K = 2**bits), None where the values are not a bit
    depth (`digits` has 17 levels).
    """

    name: str
    image_shape: tuple
    num_categories: int
    bits: int | None

    @property
    def event_shape(self):
        return self.image_shape

    @property
    def num_variables(self) -> int:
        """H * W * C, the number of categorical variables per image."""
        return math.prod(self.image_shape)


@dataclasses.dataclass(frozen=True)
class Opened:
    """An opened dataset (`tfps.data.open`): its `info` (a `DatasetInfo`), `load(split)` -> a
    dataset of single int examples (int32 images `[H, W, C]` or sequences `[L]`; latents are
    uint8 for K <= 256), and the entries config.json's `dataset` section adds."""

    info: object
    load: object
    description: dict


def nouns(array):
    """`(example, position)`: the words for one example of `array` and a place in it."""
    return ("sequence", "position") if array.ndim == 2 else ("image", "pixel")


def where(location, split, index, names=None, example="image"):
    """`"<location>: split 'train', image 3 (<file>)"`: the words that name a bad example."""
    file = f" ({names[index]})" if names is not None else ""
    return f"{location}: split {split!r}, {example} {index}{file}"


def first_true(mask):
    """`(example index, position tuple)` of the first True of a bool `[N, ...]` array."""
    flat = int(np.argmax(mask.reshape(-1)))
    position = np.unravel_index(flat, mask.shape)
    return int(position[0]), tuple(int(p) for p in position[1:])


def first_bad(array, mask, location, split, names, offset):
    """`(words, value)` of the first True of `mask`: `"<where>, pixel (1, 3, 0)"` for images,
    `"<where>, position 5"` for sequences, and the value of `array` there."""
    index, place = first_true(mask)
    example, position = nouns(array)
    shown = place[0] if len(place) == 1 else place
    words = f"{where(location, split, index + offset, names, example)}, {position} {shown}"
    return words, array[(index, *place)]


def checked_integers(array, location, split, names=None, offset=0):
    """`array` (`[N, H, W, C]` or `[N, L]`) as int64; DataError for a non-integer or negative
    value."""
    values = "values" if nouns(array)[0] == "sequence" else "pixel values"
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (np.round(array) != array)
        if bad.any():
            words, value = first_bad(array, bad, location, split, names, offset)
            raise DataError(
                f"{words}: value {value!r} is not an integer; {values} must be integers"
            )
    elif array.dtype.kind not in "biu":
        raise DataError(
            f"{location}: split {split!r} has values of type {array.dtype}; {values} must be "
            f"integers"
        )
    array = array.astype(np.int64)
    if (array < 0).any():
        words, value = first_bad(array, array < 0, location, split, names, offset)
        raise DataError(f"{words}: value {value} is negative; {values} must be >= 0")
    return array


def check_below(array, num_categories, location, split, names=None, why="", offset=0):
    """DataError unless every value of `array` is below `num_categories`."""
    if array.size and array.max() >= num_categories:
        words, value = first_bad(array, array >= num_categories, location, split, names, offset)
        raise DataError(f"{words}: value {value} is not below K = {num_categories}{why}")


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
