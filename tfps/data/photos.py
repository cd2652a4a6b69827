"""`photos32`: 32x32x3 8-bit patches of the colour photographs shipped inside scikit-image.

An embedded, offline colour dataset in the setting of [1, sec. 4.1] (CIFAR10: 32x32x3, 8 bit, or
5 bit with `bits=5`, K = 32). Nothing is downloaded: the photographs are files inside the
scikit-image wheel (`skimage.data`, no pooch fetch).

Source photographs (`skimage.data` loader, size, downscale factor f):

    astronaut             512 x 512    f = 1
    chelsea               300 x 451    f = 1
    coffee                400 x 600    f = 1
    rocket                427 x 640    f = 1
    stereo_motorcycle[0]  500 x 741    f = 1   (the left view)
    hubble_deep_field     872 x 1000   f = 2
    retina               1411 x 1411   f = 4
    immunohistochemistry  512 x 512    f = 1

A photo is downscaled by the mean over f x f blocks (rounded to the nearest integer) and split
into three horizontal bands: rows [0, 0.7 H) are the training band, [0.7 H, 0.85 H) validation,
[0.85 H, H) test (H the downscaled height, band edges floored). Every band is cut into 32x32
patches on a fixed grid of stride 16 (patches of one band overlap by half, patches of different
bands never share a pixel), read photo by photo in the order above, row-major. Flat patches
(standard deviation of their values below `MIN_STD` = 2, e.g. the black border of `retina`) are
dropped: they carry no image and would repeat across the splits. So validation and test patches
come from image regions disjoint from every training patch, by construction, and the set is
deterministic (no random numbers). Patches per split: train 4571, validation 663,
test 653 (`SPLIT_SIZES`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import functools

import numpy as np

PATCH = 32
STRIDE = 16
MIN_STD = 2.0
IMAGE_SHAPE = (PATCH, PATCH, 3)
NATIVE_BITS = 8
BANDS = {"train": (0.0, 0.7), "validation": (0.7, 0.85), "test": (0.85, 1.0)}
PHOTOS = (  # (skimage.data loader, downscale factor)
    ("astronaut", 1),
    ("chelsea", 1),
    ("coffee", 1),
    ("rocket", 1),
    ("stereo_motorcycle", 1),
    ("hubble_deep_field", 2),
    ("retina", 4),
    ("immunohistochemistry", 1),
)
SPLIT_SIZES = {"train": 4571, "validation": 663, "test": 653}


def _photo(name):
    """The RGB photo `skimage.data.<name>()`: uint8 `[H, W, 3]` (the left view for a stereo
    pair)."""
    import skimage.data  # only this dataset needs scikit-image

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):
        image = image[0]
    return np.asarray(image, dtype=np.uint8)[..., :3]


def downscale(image, factor):
    """The mean over `factor` x `factor` blocks, rounded: `[H, W, C]` -> `[H // f, W // f, C]`."""
    if factor == 1:
        return image
    height, width = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[: height * factor, : width * factor].astype(np.float64)
    blocks = blocks.reshape(height, factor, width, factor, image.shape[2])
    return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


def band_rows(height, split):
    """`(first, end)` rows of `split`'s band in a photo of `height` rows."""
    start, stop = BANDS[split]
    return int(start * height), int(stop * height)


def patches(band):
    """The 32x32 patches of `band` `[h, w, C]` on the stride-16 grid, row-major:
    `[n, 32, 32, C]` (n = 0 when the band is lower than a patch)."""
    height, width = band.shape[:2]
    rows = range(0, height - PATCH + 1, STRIDE)
    cols = range(0, width - PATCH + 1, STRIDE)
    cut = [band[r : r + PATCH, c : c + PATCH] for r in rows for c in cols]
    return np.stack(cut) if cut else np.zeros((0, PATCH, PATCH, band.shape[2]), band.dtype)


@functools.lru_cache(maxsize=None)
def _bands():
    """`({split: patches}, {split: labels})`, read-only (see `photo_patches`, `photo_labels`)."""
    parts = {split: [] for split in BANDS}
    sources = {split: [] for split in BANDS}
    for index, (name, factor) in enumerate(PHOTOS):
        image = downscale(_photo(name), factor)
        for split in BANDS:
            first, end = band_rows(image.shape[0], split)
            cut = patches(image[first:end])
            kept = cut[cut.reshape(len(cut), -1).std(axis=1) >= MIN_STD]
            parts[split].append(kept)
            sources[split].append(np.full(len(kept), index, np.int32))
    result, labels = {}, {}
    for split in BANDS:
        result[split] = np.concatenate(parts[split]).astype(np.int32)
        labels[split] = np.concatenate(sources[split])
        for array in (result[split], labels[split]):
            array.setflags(write=False)
    return result, labels


def photo_patches():
    """`{split: int32 [N, 32, 32, 3]}` in 0..255, read-only. Computed once per process."""
    return _bands()[0]


def photo_labels():
    """`{split: int32 [N]}`: the photograph each patch of `photo_patches` is cut from, its index in
    `PHOTOS` (0..7), read-only: labels of the set by construction, for a classifier (the Frechet
    distance of `tfps.evaluation.frechet`)."""
    return _bands()[1]
