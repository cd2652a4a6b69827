"""Tests for tfps/models/pixelcnn.py: the autoregressive property, likelihood at init, saving."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import arms, pixelcnn
from tfps.sampling import protocol


def _flat_logits(model, x):
    logits = model(tf.constant(x), training=False)[0].numpy()
    return logits.reshape(x.shape[0], -1, model.num_categories)


@pytest.mark.parametrize(
    "image_shape,k,num_scales",
    [
        ((5, 4, 1), 2, 1),
        ((3, 4, 3), 5, 1),
        ((3, 3, 3), 256, 1),
        ((6, 5, 1), 2, 2),
        ((7, 6, 1), 3, 3),
        ((4, 4, 3), 5, 3),
        ((8, 8, 1), 2, 4),
    ],
)
def test_autoregressive_property_by_perturbation(image_shape, k, num_scales):
    """Changing x_j leaves the logits of every position <= j unchanged and changes a later one.

    The multi-scale cases use odd sizes too (7 -> 4 -> 2 rows), where the upsampling crops.
    """
    model = pixelcnn.PixelCNN(
        image_shape, k, num_resnets=2, filters=8, dropout_rate=0.0, num_scales=num_scales
    )
    d = model.num_variables
    x = np.random.default_rng(0).integers(0, k, size=image_shape).astype(np.int32)
    # One batch: row 0 is x, row 1 + j is x with variable j changed.
    batch = np.tile(x.reshape(1, -1), (d + 1, 1))
    batch[1 + np.arange(d), np.arange(d)] = (x.reshape(-1) + 1 + np.arange(d) % (k - 1)) % k
    logits = _flat_logits(model, batch.reshape((d + 1,) + image_shape))
    # Not exact equality: the rows of one batch may round differently (batch position changes the
    # kernels' blocking: up to 4e-7 seen on a CPU without AVX-512), so an unchanged logit may
    # move by rounding. A leak through a mask moves it by a weight's size (~1e-2 here).
    tolerance = 1e-5 * max(1.0, float(np.abs(logits).max()))
    for j in range(d):
        diff = np.abs(logits[1 + j] - logits[0]).max(axis=-1)
        assert np.all(diff[: j + 1] <= tolerance), (
            f"position {j} leaks into earlier logits: {diff[: j + 1]}"
        )
        if j < d - 1:
            assert diff[j + 1 :].max() > 100 * tolerance, f"no later logit depends on position {j}"


def test_output_shapes_and_representation():
    model = pixelcnn.PixelCNN((4, 5, 3), 7, num_resnets=1, filters=6, dropout_rate=0.0)
    logits, h = model(tf.zeros((2, 4, 5, 3), tf.int32))
    assert logits.shape == (2, 4, 5, 3, 7) and logits.dtype == tf.float32
    assert h.shape == (2, 4, 5, 6)
    assert model.num_variables == 60


@pytest.mark.parametrize("k", [2, 17, 256])
def test_uniform_init_bpd_is_close_to_log2_k(k):
    # The bound holds for typical inits; do not depend on test order.
    keras.utils.set_random_seed(0)
    model = pixelcnn.PixelCNN((6, 6, 1), k, num_resnets=1, filters=16, dropout_rate=0.0)
    x = np.random.default_rng(1).integers(0, k, size=(16, 6, 6, 1)).astype(np.int32)
    bpd = float(tf.reduce_mean(pixelcnn.bits_per_dim(model(x)[0], x)))
    assert abs(bpd - math.log2(k)) < 0.15 * math.log2(k), bpd


def test_log_prob_matches_manual_softmax():
    model = pixelcnn.PixelCNN((2, 2, 1), 3, num_resnets=1, filters=4, dropout_rate=0.0)
    x = np.array([[[[0], [2]], [[1], [1]]]], np.int32)
    logits = model(x)[0].numpy().reshape(4, 3)
    manual = sum(logits[i, v] - np.log(np.exp(logits[i]).sum()) for i, v in enumerate([0, 2, 1, 1]))
    np.testing.assert_allclose(protocol.log_prob(model(x)[0], x).numpy(), [manual], rtol=1e-5)
    np.testing.assert_allclose(
        pixelcnn.bits_per_dim(model(x)[0], x).numpy(), [-manual / (4 * math.log(2))], rtol=1e-5
    )


def test_dropout_only_in_training():
    model = pixelcnn.PixelCNN((4, 4, 1), 2, num_resnets=1, filters=8, dropout_rate=0.5)
    x = tf.ones((1, 4, 4, 1), tf.int32)
    np.testing.assert_array_equal(model(x)[0], model(x)[0])
    assert not np.array_equal(model(x, training=True)[0], model(x, training=True)[0])


def test_keras_save_and_restore_round_trip(tmp_path):
    model = pixelcnn.PixelCNN((3, 3, 2), 4, num_resnets=1, filters=4, dropout_rate=0.0)
    x = np.random.default_rng(2).integers(0, 4, size=(2, 3, 3, 2)).astype(np.int32)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(x)[0], model(x)[0], rtol=1e-6)
    assert arms.build_model(model.model_config()).get_config()["filters"] == 4


@pytest.mark.parametrize("num_scales", [1, 3])
def test_checkpoint_round_trip(tmp_path, num_scales):
    """Every weight is in the checkpoint (Keras 3 lists of layers would not be)."""
    keras.utils.set_random_seed(4)
    model = pixelcnn.PixelCNN(
        (5, 4, 1), 2, num_resnets=1, filters=4, dropout_rate=0.0, num_scales=num_scales
    )
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = arms.build_model(model.model_config())
    assert len(other.weights) == len(model.weights)
    tf.train.Checkpoint(model=other).restore(prefix).assert_existing_objects_matched()
    x = np.random.default_rng(5).integers(0, 2, size=(2, 5, 4, 1)).astype(np.int32)
    np.testing.assert_array_equal(other(x)[0], model(x)[0])


def test_multi_scale_weights_are_all_used():
    """3 scales of 1 resnet: up 1 + 1 + 1 pairs, down 1 + 2 + 2 pairs, 2 down- and 2 upsamplings,
    and every weight gets a gradient (no layer is built but left out of the call)."""
    model = pixelcnn.PixelCNN(
        (8, 8, 1), 2, num_resnets=1, filters=4, dropout_rate=0.0, num_scales=3
    )
    assert len(model.resnet_pairs()) == 8
    x = np.random.default_rng(6).integers(0, 2, size=(2, 8, 8, 1)).astype(np.int32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(pixelcnn.bits_per_dim(model(x)[0], x))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    assert pixelcnn.full_model_config({"filters": 3}) == {"num_scales": 1, "filters": 3}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(image_shape=(4, 4), num_categories=2), "image_shape"),
        (dict(image_shape=(4, 4, 1), num_categories=1), "num_categories"),
        (dict(image_shape=(4, 4, 1), num_categories=2, filters=0), "filters"),
        (dict(image_shape=(4, 4, 1), num_categories=2, num_scales=0), "num_scales"),
        (dict(image_shape=(4, 8, 1), num_categories=2, num_scales=4), "num_scales=4 halves a 4x8"),
    ],
)
def test_constructor_rejects_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pixelcnn.PixelCNN(**kwargs)


@pytest.mark.parametrize(
    "x,match",
    [
        (np.zeros((2, 4, 4, 1), np.float32), "dtype"),
        (np.zeros((2, 4, 5, 1), np.int32), "shape"),
        (np.zeros((4, 4, 1), np.int32), "shape"),
        (np.full((2, 4, 4, 1), 2, np.int32), r"\[0, 2\)"),
        (np.full((2, 4, 4, 1), -1, np.int32), r"\[0, 2\)"),
    ],
)
def test_validate_images_names_the_problem(x, match):
    with pytest.raises(ValueError, match=match):
        pixelcnn.validate_images(x, (4, 4, 1), 2)


def test_one_hot_float_input_gives_the_same_logits_as_integers():
    # tfps.train.latents feeds straight-through one-hot latents; the ARM must read them as
    # categories.
    model = pixelcnn.PixelCNN((3, 3, 2), 5, num_resnets=1, filters=8, dropout_rate=0.0)
    x = np.random.default_rng(0).integers(0, 5, (2, 3, 3, 2)).astype(np.int32)
    from_int, h_int = model(x)
    from_one_hot, h_one_hot = model(tf.one_hot(x, 5))
    np.testing.assert_allclose(from_one_hot.numpy(), from_int.numpy(), atol=1e-6)
    np.testing.assert_allclose(h_one_hot.numpy(), h_int.numpy(), atol=1e-6)
