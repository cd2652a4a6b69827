"""Pictures of samples for people: image grids written as PNG (and, later, TensorBoard images).

Images are int `[B, H, W, C]` with values in [0, K); C = 1 is shown in grey, C = 3 as RGB.
"""
import math

import numpy as np
import tensorflow as tf


def to_rgb(images, num_categories):
    """int `[B, H, W, C]` in [0, K) -> uint8 `[B, H, W, 3]` (grey for C = 1, first 3 channels else)."""
    images = np.asarray(images, np.float64)
    scaled = np.round(255.0 * images / max(num_categories - 1, 1)).astype(np.uint8)
    if scaled.shape[-1] == 1:
        return np.repeat(scaled, 3, axis=-1)
    if scaled.shape[-1] == 3:
        return scaled
    raise ValueError(f"can only draw 1- or 3-channel images, got {scaled.shape[-1]} channels")


def grid(images, columns=None, pad=1, scale=1, pad_value=255):
    """Tiles uint8 `[B, H, W, 3]` into one `[rows*(H+pad)+pad, cols*(W+pad)+pad, 3]` picture.

    `scale` repeats every pixel (nearest neighbour) so small images stay visible.
    """
    images = np.asarray(images, np.uint8)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    count, height, width, depth = images.shape
    columns = columns or int(math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    out = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, depth), pad_value,
                  np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        out[top:top + height, left:left + width] = image
    return out


def write_png(path, picture):
    """Writes a uint8 `[H, W, 3]` picture as PNG."""
    tf.io.write_file(path, tf.io.encode_png(tf.constant(picture, tf.uint8)))


def auto_scale(height, target=96):
    """An integer upscaling factor that makes an image about `target` pixels high."""
    return max(1, target // max(height, 1))
