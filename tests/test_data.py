"""Tests of tfps.data.builtin: embedded digits sets, tfds sets through `tfds.testing.mock_data`,
errors.

There is no network in the test environment, so the tfds datasets are exercised through
`tfds.testing.mock_data`, which keeps the real `tfds.builder` / `as_dataset` code path but fakes
the examples. In its default (USE_CODE) mode the builder info records no split sizes and split
slicing is ignored, so the split tests below write a `dataset_info.json` with chosen split sizes
(USE_FILES mode) and plug in an example source that honours tfds split slicing and writes each
example's tfds split and index into its pixels.
"""

import numpy as np
import pytest
import sklearn.datasets
import tensorflow as tf
import tensorflow_datasets as tfds

from tfps.data import builtin, checks, tfds_source

TFDS_DATASETS = ("binarized_mnist", "cifar10", "svhn_cropped", "imagenet_resized/32x32")
NUM_DIGITS = 1797
DIGITS_SPLIT_SIZES = {"train": 1257, "validation": 180, "test": 360}


# ----------------------------------------------------------------------------------- dataset_info


def test_dataset_names_and_default():
    assert builtin.DATASETS == (
        "digits",
        "digits28_binary",
        "digits28_binary_centred",
        "digits32",
        "photos32",
        "text_python",
        "binarized_mnist",
        "cifar10",
        "svhn_cropped",
        "imagenet_resized/32x32",
    )
    assert builtin.DEFAULT_DATASET == "digits"


@pytest.mark.parametrize(
    "name, bits, image_shape, num_categories, expected_bits",
    [
        ("digits", None, (8, 8, 1), 17, None),
        ("digits28_binary", None, (28, 28, 1), 2, 1),
        ("digits28_binary", 1, (28, 28, 1), 2, 1),
        ("digits28_binary_centred", None, (28, 28, 1), 2, 1),
        ("digits32", None, (32, 32, 1), 256, 8),
        ("digits32", 4, (32, 32, 1), 16, 4),
        ("binarized_mnist", None, (28, 28, 1), 2, 1),
        ("cifar10", None, (32, 32, 3), 256, 8),
        ("cifar10", 5, (32, 32, 3), 32, 5),
        ("svhn_cropped", 8, (32, 32, 3), 256, 8),
        ("svhn_cropped", 1, (32, 32, 3), 2, 1),
        ("imagenet_resized/32x32", 5, (32, 32, 3), 32, 5),
    ],
)
def test_dataset_info(name, bits, image_shape, num_categories, expected_bits):
    info = builtin.dataset_info(name, bits)
    assert info == builtin.DatasetInfo(name, image_shape, num_categories, expected_bits)
    assert info.num_variables == int(np.prod(image_shape))


# ------------------------------------------------------------------------------ embedded datasets


@pytest.mark.parametrize("split", builtin.SPLITS)
@pytest.mark.parametrize(
    "name, num_categories",
    [("digits", 17), ("digits28_binary", 2), ("digits28_binary_centred", 2), ("digits32", 256)],
)
def test_embedded_split_shapes_dtypes_and_values(name, num_categories, split):
    images, info = builtin.load_numpy(name, split)
    assert info == builtin.dataset_info(name)
    assert info.num_categories == num_categories
    assert images.shape == (DIGITS_SPLIT_SIZES[split], *info.image_shape)
    assert images.dtype == np.int32
    assert images.min() == 0 and images.max() == num_categories - 1

    dataset, dataset_info = builtin.load(name, split)
    assert dataset_info == info
    assert dataset.element_spec == tf.TensorSpec(info.image_shape, tf.int32)
    assert int(dataset.cardinality()) == len(images)
    np.testing.assert_array_equal(np.stack(list(dataset.as_numpy_iterator())), images)


def test_digits_splits_partition_all_1797_images():
    original = sklearn.datasets.load_digits().images.astype(np.int32).reshape(NUM_DIGITS, -1)
    splits = [builtin.load_numpy("digits", split)[0].reshape(-1, 64) for split in builtin.SPLITS]
    union = np.concatenate(splits)
    assert len(union) == NUM_DIGITS
    # Same multiset of images: sort the rows of both lexicographically and compare.
    np.testing.assert_array_equal(np.unique(union, axis=0), np.unique(original, axis=0))
    np.testing.assert_array_equal(
        union[np.lexsort(union.T[::-1])], original[np.lexsort(original.T[::-1])]
    )


def test_digits_split_indices_are_disjoint_covering_and_sized():
    indices = builtin._digits_split_indices()
    assert {split: len(idx) for split, idx in indices.items()} == DIGITS_SPLIT_SIZES
    union = np.concatenate(list(indices.values()))
    np.testing.assert_array_equal(np.sort(union), np.arange(NUM_DIGITS))


@pytest.mark.parametrize("name", builtin.EMBEDDED_DATASETS)
def test_embedded_splits_are_deterministic(name):
    first = {split: builtin.load_numpy(name, split)[0] for split in builtin.SPLITS}
    # Recompute everything from scratch, as a new process would.
    builtin._digits_split_indices.cache_clear()
    builtin._digits_images.cache_clear()
    builtin._digits28_binary_images.cache_clear()
    builtin._digits28_binary_centred_images.cache_clear()
    builtin._digits32_images.cache_clear()
    for split in builtin.SPLITS:
        np.testing.assert_array_equal(builtin.load_numpy(name, split)[0], first[split])


def test_embedded_arrays_returned_are_copies():
    images, _ = builtin.load_numpy("digits28_binary", "test")
    images[:] = 7
    assert builtin.load_numpy("digits28_binary", "test")[0].max() == 1


@pytest.mark.parametrize("name,crop", [("digits28_binary", 0), ("digits28_binary_centred", 4)])
def test_digits28_binary_looks_like_the_digits(name, crop):
    binary, _ = builtin.load_numpy(name, "train")
    digits, _ = builtin.load_numpy("digits", "train")
    # Both values occur in every image: no blank or saturated images.
    flat_binary = binary.reshape(len(binary), -1)
    assert flat_binary.min(axis=1).max() == 0 and flat_binary.max(axis=1).min() == 1
    if crop:  # MNIST's layout: the 20x20 digit box has a blank margin of `crop` pixels.
        margin = np.ones((28, 28), bool)
        margin[crop:-crop, crop:-crop] = False
        assert not binary[:, margin].any()
        binary = binary[:, crop:-crop, crop:-crop]

    downsampled = tf.image.resize(binary.astype(np.float32), (8, 8), method="area").numpy()

    def correlations(a, b):
        a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
        b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    matched = correlations(downsampled, digits.astype(np.float64))
    mismatched = correlations(downsampled, np.roll(digits, 1, axis=0).astype(np.float64))
    assert matched.min() > 0.8
    assert matched.mean() > 0.95
    assert matched.mean() > mismatched.mean() + 0.3


def test_digits32_is_the_digits_upsampled_in_8_bits():
    grey, _ = builtin.load_numpy("digits32", "train")
    digits, _ = builtin.load_numpy("digits", "train")
    assert grey.min() == 0 and grey.max() == 255
    assert len(np.unique(grey)) > 200  # grey levels, not a binarisation
    # Area-downsampling back to 8x8 gives back each image's own digit (bilinear blurs a little).
    downsampled = tf.image.resize(grey.astype(np.float32), (8, 8), method="area").numpy()

    def flat(a):
        return a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)

    a, b = flat(downsampled), flat(digits.astype(np.float64))
    matched = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    assert matched.min() > 0.85 and matched.mean() > 0.95
    # Reducing the bit depth is a right shift of the 8-bit levels.
    four_bit, info = builtin.load_numpy("digits32", "train", bits=4)
    np.testing.assert_array_equal(four_bit, grey >> 4)
    assert info.num_categories == 16


# --------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("loader", [builtin.load, builtin.load_numpy])
def test_unknown_dataset_name(loader):
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*'digits'.*'cifar10'"):
        loader("mnist", "train")
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*'digits28_binary'"):
        builtin.dataset_info("mnist")


@pytest.mark.parametrize("name", ["digits", "cifar10"])
@pytest.mark.parametrize("loader", [builtin.load, builtin.load_numpy])
def test_unknown_split(loader, name):
    with pytest.raises(ValueError, match=r"unknown split 'valid'.*'train', 'validation', 'test'"):
        loader(name, "valid")


@pytest.mark.parametrize(
    "name, bits, message",
    [
        ("digits", 4, r"invalid bits=4 for 'digits'.*17 levels.*only valid choice is bits=None"),
        ("cifar10", 0, r"invalid bits=0 for 'cifar10'.*1\.\.8.*None, 1, 2, 3, 4, 5, 6, 7, 8"),
        ("cifar10", 9, r"invalid bits=9 for 'cifar10'.*native depth of 8"),
        ("cifar10", 5.0, r"invalid bits=5\.0 for 'cifar10'"),
        ("svhn_cropped", True, r"invalid bits=True for 'svhn_cropped'"),
        ("binarized_mnist", 2, r"invalid bits=2 for 'binarized_mnist'.*valid choices: None, 1$"),
        ("digits28_binary", 5, r"invalid bits=5 for 'digits28_binary'.*native depth of 1"),
    ],
)
def test_invalid_bits(name, bits, message):
    with pytest.raises(ValueError, match=message):
        builtin.dataset_info(name, bits)
    for loader in (builtin.load, builtin.load_numpy):
        with pytest.raises(ValueError, match=message):
            loader(name, "train", bits=bits)


@pytest.mark.parametrize("name", TFDS_DATASETS)
def test_undownloadable_tfds_dataset_raises_clear_error(name, tmp_path, monkeypatch):
    network_error = ConnectionError("network is unreachable")

    def download_without_network(self, *args, **kwargs):
        raise network_error

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download_without_network)
    with pytest.raises(checks.DatasetUnavailableError) as excinfo:
        builtin.load(name, "train", data_dir=str(tmp_path))
    message = str(excinfo.value)
    assert f"tfds dataset {name!r}" in message
    assert "ConnectionError: network is unreachable" in message
    assert "network connection" in message and "`data_dir`" in message
    assert "'digits', 'digits28_binary'" in message
    assert excinfo.value.__cause__ is network_error


# --------------------------------------------------------------- tfds datasets, random fake data


@pytest.mark.parametrize(
    "name, split, bits, max_value",
    [
        ("binarized_mnist", "train", None, 2),
        ("binarized_mnist", "validation", None, 2),
        ("binarized_mnist", "test", 1, 2),
        ("cifar10", "train", None, None),
        ("cifar10", "validation", 5, None),
        ("cifar10", "test", 5, None),
        ("svhn_cropped", "test", None, None),
        ("svhn_cropped", "test", 3, None),
        ("imagenet_resized/32x32", "test", None, None),
        ("imagenet_resized/32x32", "test", 5, None),
    ],
)
def test_tfds_dataset_shapes_dtypes_and_values(name, split, bits, max_value):
    num_examples = 5
    with tfds.testing.mock_data(num_examples=num_examples, max_value=max_value):
        dataset, info = builtin.load(name, split, bits=bits)
        images, numpy_info = builtin.load_numpy(name, split, bits=bits)
        raw_images = np.stack(
            [example["image"] for example in tfds.as_numpy(tfds.load(name, split="train"))]
        )
    assert info == numpy_info == builtin.dataset_info(name, bits)
    assert dataset.element_spec == tf.TensorSpec(info.image_shape, tf.int32)
    assert images.shape == (num_examples, *info.image_shape)
    assert images.dtype == np.int32
    assert images.min() >= 0 and images.max() < info.num_categories
    # The mock yields the same examples for every split: the values are the raw ones, reduced.
    native_bits = 1 if name == "binarized_mnist" else 8
    np.testing.assert_array_equal(images, raw_images.astype(np.int32) >> (native_bits - info.bits))
    assert images.max() >= info.num_categories // 2  # The full range is in use, not just zeros.


def test_cifar10_five_bits_has_32_categories():
    with tfds.testing.mock_data(num_examples=4):
        images, info = builtin.load_numpy("cifar10", "test", bits=5)
    assert info.num_categories == 32 and info.bits == 5
    assert images.max() < 32 and images.max() >= 16


@pytest.mark.parametrize("name", ["svhn_cropped", "imagenet_resized/32x32"])
def test_random_validation_split_needs_recorded_train_size(name):
    # Default mock_data has no metadata files, so the builder info records no split sizes.
    with tfds.testing.mock_data(num_examples=3):
        with pytest.raises(checks.DatasetUnavailableError, match="records no 'train' split"):
            builtin.load(name, "validation")


# ----------------------------------------------------------- tfds datasets, index-coded fake data

TFDS_SPLIT_NAMES = ("train", "validation", "test")
INDEX_BITS = 20  # Pixels 0..19 (flattened) hold the example's index in its tfds split, in binary.
NUM_TEST_EXAMPLES = 7
EXTRA_TRAIN_EXAMPLES = 40  # Train size in the fake metadata: the validation size plus this.


def _index_coded_as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
    """Stands in for `FileReaderBuilder._as_dataset`: honours tfds split slicing.

    Example i of tfds split s has image pixels (flattened) 0..INDEX_BITS-1 = the binary digits of
    i, pixel INDEX_BITS + TFDS_SPLIT_NAMES.index(s) = 1, all others 0.
    """
    del decoders, read_config, shuffle_files
    (instruction,) = tfds.core.ReadInstruction.from_spec(split).to_absolute(self.info.splits)
    image_shape = self.info.features["image"].shape
    split_code = np.zeros(len(TFDS_SPLIT_NAMES), dtype=np.int64)
    split_code[TFDS_SPLIT_NAMES.index(instruction.splitname)] = 1
    num_padding = int(np.prod(image_shape)) - INDEX_BITS - len(TFDS_SPLIT_NAMES)

    def example(index):
        index_bits = tf.bitwise.bitwise_and(
            tf.bitwise.right_shift(index, tf.range(INDEX_BITS, dtype=tf.int64)), 1
        )
        pixels = tf.concat([index_bits, split_code, tf.zeros([num_padding], tf.int64)], axis=0)
        return {"image": tf.cast(tf.reshape(pixels, image_shape), tf.uint8)}

    num_examples = self.info.splits[instruction.splitname].num_examples
    start, stop, _ = slice(instruction.from_, instruction.to).indices(num_examples)  # None: ends.
    return tf.data.Dataset.range(start, stop).map(example)


def _decode_examples(dataset):
    """(tfds split names, indices in those splits) of the index-coded images in `dataset`."""
    code_length = INDEX_BITS + len(TFDS_SPLIT_NAMES)
    codes = dataset.map(lambda image: tf.reshape(image, [-1])[:code_length]).batch(8192)
    codes = np.concatenate(list(codes.as_numpy_iterator()))
    indices = (codes[:, :INDEX_BITS].astype(np.int64) << np.arange(INDEX_BITS)).sum(axis=1)
    split_names = {TFDS_SPLIT_NAMES[j] for j in codes[:, INDEX_BITS:].argmax(axis=1)}
    return split_names, indices


@pytest.fixture
def index_coded_tfds(tmp_path):
    """Mocks tfds with index-coded examples; yields {name: tfds train size in the metadata}."""
    train_sizes = {}
    for name in TFDS_DATASETS:
        tfds_splits = builtin._SOURCES[name].tfds_splits
        train_sizes[name] = tfds_splits.num_validation + EXTRA_TRAIN_EXAMPLES
        split_sizes = {"train": train_sizes[name], tfds_splits.test_split: NUM_TEST_EXAMPLES}
        builder = tfds.builder(name, data_dir=str(tmp_path))
        builder.info.set_splits(
            tfds.core.SplitDict(
                [
                    tfds.core.SplitInfo(name=split, shard_lengths=[size], num_bytes=0)
                    for split, size in split_sizes.items()
                ]
            )
        )
        builder.data_path.mkdir(parents=True)
        builder.info.write_to_directory(builder.data_path)
    with tfds.testing.mock_data(
        policy=tfds.testing.MockPolicy.USE_FILES,
        data_dir=str(tmp_path),
        as_dataset_fn=_index_coded_as_dataset,
    ):
        yield train_sizes


def _load_decoded(name, split):
    dataset, _ = builtin.load(name, split)
    split_names, indices = _decode_examples(dataset)
    return split_names, indices, int(dataset.cardinality())


@pytest.mark.parametrize("name", TFDS_DATASETS)
def test_tfds_paper_splits(name, index_coded_tfds):
    num_train = index_coded_tfds[name]
    tfds_splits = builtin._SOURCES[name].tfds_splits
    num_validation = tfds_splits.num_validation
    assert (
        num_validation
        == {
            "binarized_mnist": 5000,
            "cifar10": 5000,
            "svhn_cropped": 8527,
            "imagenet_resized/32x32": 20000,
        }[name]
    )

    train_sources, train, train_cardinality = _load_decoded(name, "train")
    validation_sources, validation, validation_cardinality = _load_decoded(name, "validation")
    test_sources, test, _ = _load_decoded(name, "test")

    # train and validation partition tfds `train`; test is the whole test split.
    assert train_sources == validation_sources == {"train"}
    expected_test_source = "validation" if name == "imagenet_resized/32x32" else "test"
    assert test_sources == {expected_test_source}
    np.testing.assert_array_equal(test, np.arange(NUM_TEST_EXAMPLES))
    assert len(validation) == validation_cardinality == num_validation
    assert len(train) == train_cardinality == num_train - num_validation
    union = np.sort(np.concatenate([train, validation]))
    np.testing.assert_array_equal(union, np.arange(num_train))

    last_examples = np.arange(num_train - num_validation, num_train)
    if tfds_splits.validation_from_train == "last":
        np.testing.assert_array_equal(validation, last_examples)
    else:
        assert not np.array_equal(np.sort(validation), last_examples)  # A random subset ...
        np.testing.assert_array_equal(train, np.sort(train))  # ... read in tfds order.
        _, validation_again, _ = _load_decoded(name, "validation")
        np.testing.assert_array_equal(validation_again, validation)  # Deterministic.


def test_random_validation_mask_is_seeded():
    mask = tfds_source._random_validation_mask(1000, 100)
    assert mask.dtype == bool and mask.shape == (1000,) and mask.sum() == 100
    np.testing.assert_array_equal(mask, tfds_source._random_validation_mask(1000, 100))
    assert not np.array_equal(mask, tfds_source._random_validation_mask(1000, 100, seed=1))


def test_a_local_failure_to_prepare_is_named_and_a_bug_is_not_hidden(tmp_path, monkeypatch):
    disk_full = OSError(28, "No space left on device")

    def fail(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    failure = disk_full
    with pytest.raises(checks.DatasetUnavailableError) as excinfo:
        builtin.load("cifar10", "train", data_dir=str(tmp_path))
    message = str(excinfo.value)
    assert "No space left on device" in message and "can be written" in message
    assert "network" not in message and excinfo.value.__cause__ is disk_full
    failure = TypeError("a bug in a builder")
    with pytest.raises(TypeError, match="a bug in a builder"):
        builtin.load("cifar10", "train", data_dir=str(tmp_path))
