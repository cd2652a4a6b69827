"""A folder of PNG / JPEG images as train / validation / test arrays (`tfps.data.sources`).

The images are the folder's files ending in `.png`, `.jpg` or `.jpeg` (any case; subfolders are
not read), in sorted name order. Each goes to a split by a hash of its name: the first byte of
sha256(name) modulo 10 is 0 for test, 1 for validation, anything else for train, so the split of a
file never depends on the other files. Grey images (PIL modes L, I, I;16 and 1) have one channel,
RGB (and palette) images three; all must have one size.
"""

import hashlib
import os

import numpy as np
from PIL import Image

from tfps.data.checks import DataError

SUFFIXES = (".png", ".jpg", ".jpeg")
_MODES = {"L": "L", "1": "L", "I": "I", "I;16": "I", "RGB": "RGB", "P": "RGB"}


def split_of(name):
    """The split of the image file `name`: a fixed function of the name (module docstring)."""
    bucket = hashlib.sha256(name.encode("utf-8")).digest()[0] % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def read_image(path):
    """The image at `path` as an int64 `[H, W, C]` array (C = 1 grey, 3 RGB)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in _MODES:
                raise DataError(
                    f"{path}: image mode {image.mode!r} is neither grey nor RGB (modes: "
                    f"{', '.join(_MODES)})"
                )
            array = np.asarray(image.convert(_MODES[image.mode]), dtype=np.int64)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL reports a corrupt file in many ways
        raise DataError(f"{path}: cannot read the image ({type(e).__name__}: {e})") from e
    return array[..., np.newaxis] if array.ndim == 2 else array


def read_folder(folder):
    """`({split: int64 [N, H, W, C]}, {split: [file names]}, fingerprint)` of a folder of images.

    The fingerprint is a sha256 over the names and bytes of the files. Raises DataError (naming
    the file) for an unreadable image or one whose size differs from the first.
    """
    names = sorted(
        n
        for n in os.listdir(folder)
        if n.lower().endswith(SUFFIXES) and os.path.isfile(os.path.join(folder, n))
    )
    if not names:
        raise DataError(f"{folder}: no images ({', '.join(SUFFIXES)}) in this folder")
    digest = hashlib.sha256()
    images = {"train": [], "validation": [], "test": []}
    files = {"train": [], "validation": [], "test": []}
    first = None
    for name in names:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            digest.update(name.encode("utf-8") + b"\0" + f.read() + b"\0")
        image = read_image(path)
        split = split_of(name)
        if first is None:
            first = (name, image.shape)
        elif image.shape != first[1]:
            raise DataError(
                f"{path} (split {split!r}, image {len(images[split])}): size "
                f"{'x'.join(map(str, image.shape))}, but {first[0]} is "
                f"{'x'.join(map(str, first[1]))}; all images must have one size (and channels)"
            )
        images[split].append(image)
        files[split].append(name)
    arrays = {
        split: np.stack(chunk) if chunk else np.zeros((0, *first[1]), np.int64)
        for split, chunk in images.items()
    }
    return arrays, files, "sha256:" + digest.hexdigest()
