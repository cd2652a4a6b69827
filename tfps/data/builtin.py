"""Image datasets for the ARM: integer images `[H, W, C]` in [0, K), with the paper's splits.

Every dataset yields single int32 images `[H, W, C]` whose values lie in [0, K); nothing is batched,
shuffled or repeated here (the caller does that). `dataset_info(name, bits)` gives the shape and K
without touching any data.

Datasets and splits (train / validation / test):

  * `digits` (default; embedded, offline): scikit-learn's `load_digits()`, 1797 images 8x8x1 with
    17 grey levels 0..16, so K = 17 and there is no bit depth (`bits` must be None). Split with a
    fixed permutation `np.random.default_rng(0).permutation(1797)`: its first 360 indices are
    test, the next 180 validation, the remaining 1257 train; each split keeps the original order.
  * `digits28_binary` (embedded, offline): a stand-in with the shape of binary MNIST. The same
    digits scaled to [0, 1], upsampled bilinearly to 28x28 and binarised at 0.5: 28x28x1, K = 2.
    Same split indices as `digits`. The digits fill the frame (30% ink, strokes from the top row
    down), unlike MNIST's.
  * `digits28_binary_centred` (embedded, offline): the same digits in MNIST's layout ([2]:
    size-normalised to a 20x20 box, centred in 28x28). Scaled to [0, 1], upsampled
    bilinearly to 20x20, padded with 4 background pixels on every side and binarised at 0.5:
    28x28x1, K = 2, 16% ink (binarized MNIST: 13%). Same split indices as `digits`.
  * `digits32` (embedded, offline): a 32x32 grey-level stand-in for the latent-space experiments
    ([1, sec. 4.2] uses 32x32 images). The same digits scaled to [0, 1], upsampled bilinearly to
    32x32 and quantised to 8 bits, round(255 * v): 32x32x1, 8 bit (K = 256, `bits` reduces it
    like the tfds sets). Same split indices as `digits`.
  * `photos32` (embedded, offline): 32x32x3 8-bit patches of the colour photographs inside
    scikit-image, split by disjoint horizontal bands of each photo (`tfps.data.photos`): 4571 train,
    663 validation, 653 test patches. `bits=5` gives the 5-bit setting of CIFAR10 (K = 32).
  * `text_python` (embedded, offline; not images): sequences of event shape `(64,)`, windows of
    64 characters of the Python reference documentation in the standard library (PSF licence),
    K = 96 characters, split into disjoint parts of the text (`tfps.data.text`); for sequence ARMs.
  * tfds datasets (downloaded by tensorflow-datasets on first use, or read from `data_dir`), with
    the splits of [1, sec. 4]:
      - `binarized_mnist`  28x28x1, 1 bit (K = 2): validation = last 5000 of tfds `train`.
      - `cifar10`          32x32x3, 8 bit:         validation = last 5000 of tfds `train`.
      - `svhn_cropped`     32x32x3, 8 bit:         validation = 8527 random examples of `train`.
      - `imagenet_resized/32x32` 32x32x3, 8 bit:   validation = 20000 random examples of `train`,
                                                   test = tfds `validation`.
    train is the rest of tfds `train`; test is tfds `test` unless stated. The random validation
    sets are drawn with `np.random.default_rng(0)` over the number of train examples recorded in
    the tfds builder info, and index the train split in its canonical (file) order. Everything
    that touches tensorflow-datasets is `tfps.data.tfds_source`'s.

Bit depth: `bits=b` reduces an 8-bit dataset to b bits by `x >> (8 - b)`, so K = 2**b (the paper's
5-bit CIFAR10 has K = 32). `bits=None` keeps the native depth. Asking for more bits than the
native depth is an error.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Yann LeCun, Leon Bottou, Yoshua Bengio, Patrick Haffner. Gradient-Based Learning Applied to
     Document Recognition. In Proceedings of the IEEE, 1998.
"""

import dataclasses
import functools

import numpy as np
import sklearn.datasets
import tensorflow as tf

from tfps.data import checks, photos, text, tfds_source

SPLITS = checks.SPLITS
DEFAULT_DATASET = "digits"
MAX_BITS = checks.BUILTIN_MAX_BITS


DatasetInfo = checks.DatasetInfo  # the shape and K of a dataset, as every source gives it


@dataclasses.dataclass(frozen=True)
class _Source:
    """Native image shape and depth of a dataset; `tfds_splits` is None for embedded datasets."""

    image_shape: tuple
    native_bits: int | None  # None: levels that are not a bit depth (digits' 0..16).
    tfds_splits: tfds_source.PaperSplits | None = None
    levels: int = 17  # K when native_bits is None


_SOURCES = {
    "digits": _Source((8, 8, 1), native_bits=None),
    "digits28_binary": _Source((28, 28, 1), native_bits=1),
    "digits28_binary_centred": _Source((28, 28, 1), native_bits=1),
    "digits32": _Source((32, 32, 1), native_bits=8),
    "photos32": _Source(photos.IMAGE_SHAPE, native_bits=photos.NATIVE_BITS),
    text.NAME: _Source((text.LENGTH,), native_bits=None, levels=len(text.VOCABULARY)),
    "binarized_mnist": _Source((28, 28, 1), 1, tfds_source.PaperSplits("last", 5000)),
    "cifar10": _Source((32, 32, 3), 8, tfds_source.PaperSplits("last", 5000)),
    "svhn_cropped": _Source((32, 32, 3), 8, tfds_source.PaperSplits("random", 8527)),
    "imagenet_resized/32x32": _Source(
        (32, 32, 3), 8, tfds_source.PaperSplits("random", 20000, test_split="validation")
    ),
}
DATASETS = tuple(_SOURCES)
EMBEDDED_DATASETS = tuple(name for name, source in _SOURCES.items() if source.tfds_splits is None)

_DIGITS_LEVELS = 17  # load_digits() values are 0..16.
_DIGITS_SPLIT_SEED = 0
_DIGITS_NUM_TEST = 360
_DIGITS_NUM_VALIDATION = 180


def _choices(values):
    return ", ".join(repr(value) for value in values)


def _check_name(name):
    if name not in _SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {_choices(DATASETS)}")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of: {_choices(SPLITS)}")


def _effective_bits(name, bits):
    """The bit depth `bits` asks for (native depth when None); ValueError if it cannot be had."""
    native_bits = _SOURCES[name].native_bits
    if bits is None:
        return native_bits
    if native_bits is None:
        raise ValueError(
            f"invalid bits={bits!r} for {name!r}: its {_SOURCES[name].levels} levels "
            f"(0..{_SOURCES[name].levels - 1}) are not a bit depth, so the only valid choice is "
            f"bits=None"
        )
    is_int = isinstance(bits, (int, np.integer)) and not isinstance(bits, bool)
    if not is_int or not 1 <= bits <= native_bits:
        raise ValueError(
            f"invalid bits={bits!r} for {name!r}: bits must lie in 1..{MAX_BITS} and not exceed "
            f"the native depth of {native_bits}; valid choices: None, "
            f"{', '.join(str(b) for b in range(1, native_bits + 1))}"
        )
    return int(bits)


def dataset_info(name: str, bits: int | None = None) -> DatasetInfo:
    """Shape, K and bit depth of dataset `name` reduced to `bits` bits (native depth if None)."""
    _check_name(name)
    effective_bits = _effective_bits(name, bits)
    num_categories = _SOURCES[name].levels if effective_bits is None else 2**effective_bits
    return DatasetInfo(name, _SOURCES[name].image_shape, num_categories, effective_bits)


def _bit_shift(name, info):
    """How far to shift native values right to reach `info.bits` (0 where nothing is reduced)."""
    native_bits = _SOURCES[name].native_bits
    return 0 if native_bits is None else native_bits - info.bits


# ----------------------------------------------------------------------------- embedded datasets


def _read_only(array):
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=None)
def _digits_images():
    """All 1797 scikit-learn digits, int32 `[1797, 8, 8, 1]` in 0..16."""
    images = sklearn.datasets.load_digits().images.astype(np.int32)
    return _read_only(images[..., np.newaxis])


def _upsampled_digits(size, margin=0):
    """The digits scaled to [0, 1], bilinearly upsampled to `size` x `size`, then padded with
    `margin` zeros on every side: float32 `[1797, size + 2 margin, size + 2 margin, 1]`."""
    scaled = _digits_images().astype(np.float32) / (_DIGITS_LEVELS - 1)
    upsampled = tf.image.resize(scaled, (size, size), method="bilinear").numpy()
    return np.pad(upsampled, [[0, 0], [margin, margin], [margin, margin], [0, 0]])


@functools.lru_cache(maxsize=None)
def _digits28_binary_images():
    """The digits scaled to [0, 1], bilinearly upsampled to 28x28, binarised at 0.5.

    Returns int32 `[1797, 28, 28, 1]` in {0, 1}. Computed once per process.
    """
    return _read_only((_upsampled_digits(28) > 0.5).astype(np.int32))


@functools.lru_cache(maxsize=None)
def _digits28_binary_centred_images():
    """MNIST's layout: the digits upsampled to 20x20, centred in 28x28, binarised at 0.5.

    Returns int32 `[1797, 28, 28, 1]` in {0, 1}. Computed once per process.
    """
    return _read_only((_upsampled_digits(20, margin=4) > 0.5).astype(np.int32))


@functools.lru_cache(maxsize=None)
def _digits32_images():
    """The digits scaled to [0, 1], bilinearly upsampled to 32x32, quantised to 8 bits.

    Returns int32 `[1797, 32, 32, 1]` in 0..255: round(255 * v). Computed once per process.
    """
    upsampled = _upsampled_digits(32)
    levels = np.clip(np.round(upsampled * (2**MAX_BITS - 1)), 0, 2**MAX_BITS - 1)
    return _read_only(levels.astype(np.int32))


_EMBEDDED_IMAGES = {
    "digits": _digits_images,
    "digits28_binary": _digits28_binary_images,
    "digits28_binary_centred": _digits28_binary_centred_images,
    "digits32": _digits32_images,
    "photos32": None,  # tfps.data.photos, split by bands rather than by `_digits_split_indices`
    text.NAME: None,  # tfps.data.text, split into parts of the text
}


@functools.lru_cache(maxsize=None)
def _digits_split_indices():
    """{split: sorted indices into the 1797 digits}; see the module docstring for the split."""
    num_images = len(_digits_images())
    permutation = np.random.default_rng(_DIGITS_SPLIT_SEED).permutation(num_images)
    num_held_out = _DIGITS_NUM_TEST + _DIGITS_NUM_VALIDATION
    parts = {
        "test": permutation[:_DIGITS_NUM_TEST],
        "validation": permutation[_DIGITS_NUM_TEST:num_held_out],
        "train": permutation[num_held_out:],
    }
    return {split: _read_only(np.sort(indices)) for split, indices in parts.items()}


def _embedded_numpy(name, split, info):
    if name == "photos32":
        return np.right_shift(photos.photo_patches()[split], _bit_shift(name, info))
    if name == text.NAME:
        return text.windows(split)
    images = _EMBEDDED_IMAGES[name]()[_digits_split_indices()[split]]  # Fancy indexing copies.
    return np.right_shift(images, _bit_shift(name, info))


# --------------------------------------------------------------------------------- tfds datasets


def _tfds_dataset(name, split, info, data_dir):
    splits, shift = _SOURCES[name].tfds_splits, _bit_shift(name, info)
    return tfds_source.paper_split(name, splits, split, data_dir, shift, EMBEDDED_DATASETS)


# ------------------------------------------------------------------------------------ public API


def load(
    name: str, split: str, bits: int | None = None, data_dir: str | None = None
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Split `split` of dataset `name` as a `tf.data.Dataset` of int32 images `[H, W, C]` in [0, K).

    Args:
      name: one of `DATASETS`.
      split: "train", "validation" or "test" (the paper's splits, see the module docstring).
      bits: reduce 8-bit data to this many bits (`x >> (8 - bits)`); None keeps the native depth.
      data_dir: tfds data directory (ignored for the embedded datasets).

    Returns:
      `(dataset, info)`; the dataset is not batched, shuffled or repeated.

    Raises:
      ValueError: unknown name or split, or invalid `bits`.
      DatasetUnavailableError: a tfds dataset that is neither prepared nor downloadable.
    """
    _check_name(name)
    _check_split(split)
    info = dataset_info(name, bits)
    if name in _EMBEDDED_IMAGES:
        return tf.data.Dataset.from_tensor_slices(_embedded_numpy(name, split, info)), info
    return _tfds_dataset(name, split, info, data_dir), info


def load_numpy(
    name: str, split: str, bits: int | None = None, data_dir: str | None = None
) -> tuple[np.ndarray, DatasetInfo]:
    """Like `load`, but the whole split as one int32 array `[N, H, W, C]` (for small datasets)."""
    _check_name(name)
    _check_split(split)
    info = dataset_info(name, bits)
    if name in _EMBEDDED_IMAGES:
        return _embedded_numpy(name, split, info), info
    dataset, _ = load(name, split, bits, data_dir)
    batches = list(dataset.batch(1024).as_numpy_iterator())
    if not batches:
        return np.zeros((0, *info.image_shape), dtype=np.int32), info
    return np.concatenate(batches), info


LABELLED_DATASETS = ("digits", "digits28_binary", "digits28_binary_centred", "digits32", "photos32")


def labels(name: str, split: str) -> np.ndarray:
    """The class of every image of split `split` of an embedded labelled dataset
    (`LABELLED_DATASETS`), in `load_numpy`'s order: int32 `[N]`; the digit (0..9) of the digits
    sets, the source photograph (0..7, `tfps.data.photos.photo_labels`) of `photos32`. ValueError
    for another dataset."""
    _check_split(split)
    if name not in LABELLED_DATASETS:
        raise ValueError(f"labels are embedded for {', '.join(LABELLED_DATASETS)}; got {name!r}")
    if name == "photos32":
        return photos.photo_labels()[split]
    targets = sklearn.datasets.load_digits().target.astype(np.int32)
    return _read_only(targets[_digits_split_indices()[split]])
