"""Tests of tfps.data.photos: the embedded 32x32x3 colour set `photos32` (through
tfps.data.builtin)."""

import numpy as np
import pytest

from tfps.data import builtin, photos


@pytest.mark.parametrize("split", builtin.SPLITS)
def test_shapes_dtype_and_values(split):
    images, info = builtin.load_numpy("photos32", split)
    assert info == builtin.DatasetInfo("photos32", (32, 32, 3), 256, 8)
    assert images.shape == (photos.SPLIT_SIZES[split], 32, 32, 3)
    assert images.dtype == np.int32
    assert images.min() >= 0 and images.max() <= 255
    assert images.max() - images.min() > 100  # natural images, not a constant
    first = next(iter(builtin.load("photos32", split)[0])).numpy()
    np.testing.assert_array_equal(first, images[0])


@pytest.mark.parametrize("split", builtin.SPLITS)
def test_each_patch_is_labelled_with_the_photograph_it_is_cut_from(split):
    labels = builtin.labels("photos32", split)
    assert labels.shape == (photos.SPLIT_SIZES[split],) and labels.dtype == np.int32
    assert not labels.flags.writeable
    # Read photo by photo: the labels run 0..7 in order, each photo a block of patches.
    assert (np.diff(labels) >= 0).all() and labels[0] == 0
    assert set(labels.tolist()) <= set(range(len(photos.PHOTOS))) and len(set(labels)) >= 6
    # The patches of one label are those of that photograph's band.
    image = photos.downscale(photos._photo("astronaut"), 1)
    first, end = photos.band_rows(image.shape[0], split)
    np.testing.assert_array_equal(
        builtin.load_numpy("photos32", split)[0][labels == 0][0], image[first : first + 32, :32]
    )


def test_train_split_has_a_few_thousand_patches():
    assert photos.SPLIT_SIZES["train"] >= 3000
    assert min(photos.SPLIT_SIZES.values()) >= 200


def test_five_bits_is_the_8_bit_set_shifted():
    full, _ = builtin.load_numpy("photos32", "validation")
    reduced, info = builtin.load_numpy("photos32", "validation", bits=5)
    assert info.num_categories == 32 and info.bits == 5
    np.testing.assert_array_equal(reduced, full >> 3)
    assert reduced.max() == 31


def test_no_training_patch_is_a_validation_or_test_patch():
    train = {p.tobytes() for p in photos.photo_patches()["train"]}
    for split in ("validation", "test"):
        held_out = {p.tobytes() for p in photos.photo_patches()[split]}
        assert not train & held_out, split
    assert not {p.tobytes() for p in photos.photo_patches()["validation"]} & {
        p.tobytes() for p in photos.photo_patches()["test"]
    }


@pytest.mark.parametrize("height", [300, 352, 427, 436, 500, 512])
def test_bands_are_disjoint_and_cover_the_photo(height):
    rows = [photos.band_rows(height, split) for split in ("train", "validation", "test")]
    assert rows[0][0] == 0 and rows[-1][1] == height
    for (_, end), (first, _) in zip(rows, rows[1:]):
        assert end == first  # a patch lies inside its band, so no two splits share a pixel


def test_patches_lie_inside_their_band():
    band = np.arange(70 * 50 * 1).reshape(70, 50, 1)
    cut = photos.patches(band)
    assert cut.shape == (3 * 2, 32, 32, 1)  # rows 0, 16, 32; columns 0, 16
    np.testing.assert_array_equal(cut[-1], band[32:64, 16:48])
    assert photos.patches(band[:20]).shape == (0, 32, 32, 1)


def test_downscale_is_the_rounded_block_mean():
    image = np.array([[[0], [1]], [[2], [4]]], np.uint8)
    assert photos.downscale(image, 2).tolist() == [[[2]]]  # (0 + 1 + 2 + 4) / 4 = 1.75


def test_deterministic():
    first = {split: array.copy() for split, array in photos.photo_patches().items()}
    photos._bands.cache_clear()  # computed again from the photographs
    for split, array in photos.photo_patches().items():
        np.testing.assert_array_equal(array, first[split])
