"""Tiny ARMs for the tests: untrained, or fitted briefly to stripes so forecasts matter."""

import keras
import numpy as np
import tensorflow as tf

from tfps.models import pixelcnn


def tiny_model(image_shape, k, seed=0, filters=8, num_scales=1):
    """An untrained 1-resnet PixelCNN without dropout, seeded."""
    keras.utils.set_random_seed(seed)
    return pixelcnn.PixelCNN(
        image_shape, k, num_resnets=1, filters=filters, dropout_rate=0.0, num_scales=num_scales
    )


def stripes(image_shape, k):
    """The K images of horizontal stripes (row + channel + shift) mod K, int32 `[K, H, W, C]`."""
    h, _, c = image_shape
    rows = np.arange(h)[:, None, None] + np.arange(c)[None, None, :]
    images = [np.broadcast_to((rows + s) % k, image_shape) for s in range(k)]
    return np.stack(images).astype(np.int32)


def trained_model(image_shape, k, steps=60, seed=3, num_scales=1):
    """A tiny model fitted for `steps` Adam steps to `stripes`, so forecasts are often right."""
    model = tiny_model(image_shape, k, seed=seed, num_scales=num_scales)
    data = stripes(image_shape, k)
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function  # traced once: an eager step pays every layer's Python dispatch
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(pixelcnn.bits_per_dim(model(data, training=True)[0], data))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )

    for _ in range(steps):
        step()
    return model


def farm_config(**overrides):
    """A `TrainConfig` of a 3-step farm_made run on digits with the orderings tl_rows and br_rows
    (16 hidden units, batch 16, 1 validation batch)."""
    from tfps.train import training  # noqa: PLC0415 - only the FARM tests train through it

    values = dict(
        dataset="digits", arch="farm_made", orderings="tl_rows,br_rows", filters=16,
        num_layers=1, dropout_rate=0.0, batch_size=16, steps=3, log_every=3, eval_every=3,
        checkpoint_every=3, eval_batches=1,
    )  # fmt: skip
    return training.TrainConfig(**{**values, **overrides})
