"""Tiny ARMs for the tests: untrained, or fitted briefly to stripes so forecasts matter."""

import os

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


# The fitted weights of every `trained_model` the suite asks for, written once by
# `python tests/tiny_models.py` (fitting costs 3-10 s of tracing per model on 2 cores; the tests
# need a model whose forecasts are often right, not this machine's rounding of the fit).
TRAINED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "trained")
# (image_shape, k, steps, num_scales) of each trained_model call in the suite (seed 3).
TRAINED_CASES = (
    ((4, 4, 1), 2, 30, 1),
    ((2, 2, 3), 5, 30, 1),
    ((4, 4, 1), 2, 20, 2),
    ((4, 3, 1), 2, 10, 1),
    ((6, 5, 1), 2, 60, 1),
    ((4, 3, 3), 5, 60, 1),
    ((4, 4, 1), 2, 30, 2),
    ((4, 3, 3), 5, 20, 1),
    ((4, 3, 3), 5, 30, 1),
)


def trained_path(image_shape, k, steps, num_scales, seed=3):
    """The .npz of a case's fitted weights (`TRAINED`)."""
    shape = "x".join(map(str, image_shape))
    return os.path.join(TRAINED, f"{shape}_k{k}_steps{steps}_scales{num_scales}_seed{seed}.npz")


def fit(model, image_shape, k, steps):
    """`steps` Adam steps (learning rate 0.02) of `model` on `stripes(image_shape, k)`."""
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


def trained_model(image_shape, k, steps=60, seed=3, num_scales=1):
    """A tiny model fitted for `steps` Adam steps to `stripes`, so forecasts are often right: the
    weights recorded in `TRAINED` when the case has them, else fitted here."""
    model = tiny_model(image_shape, k, seed=seed, num_scales=num_scales)
    path = trained_path(image_shape, k, steps, num_scales, seed)
    if not os.path.exists(path):
        return fit(model, image_shape, k, steps)
    model(tf.zeros((1,) + tuple(image_shape), tf.int32))  # builds the weights
    with np.load(path) as recorded:
        model.set_weights([recorded[f"w{i}"] for i in range(len(recorded.files))])
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


if __name__ == "__main__":
    os.makedirs(TRAINED, exist_ok=True)
    for shape, categories, fit_steps, scales in TRAINED_CASES:
        fitted = fit(
            tiny_model(shape, categories, seed=3, num_scales=scales), shape, categories, fit_steps
        )
        target = trained_path(shape, categories, fit_steps, scales)
        np.savez(target, **{f"w{i}": w for i, w in enumerate(fitted.get_weights())})
        print("wrote", target)
