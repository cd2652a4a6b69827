"""Tests for tfps/models/heads.py: the forecasting heads read only what is known when they
forecast, and train under a mixed-precision policy."""

import contextlib
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import heads as heads_lib
from tfps.models import pixelcnn
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive
from tfps.train import training

from oracles import receptive_field


def test_triangular_mask_keeps_the_taps_at_or_before_the_centre():
    np.testing.assert_array_equal(
        heads_lib.triangular_mask(3)[:, :, 0, 0], [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    )


def test_triangular_conv_sees_only_pixels_at_or_before_the_output_in_raster_order():
    layer = heads_lib.TriangularConv2D(4)
    assert receptive_field(layer, (6, 6, 2), (3, 2)) == {(2, 1), (2, 2), (2, 3), (3, 1), (3, 2)}
    assert layer(tf.zeros((1, 5, 4, 2))).shape == (1, 5, 4, 4)
    config = layer.get_config()
    assert heads_lib.TriangularConv2D.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="odd"):
        heads_lib.TriangularConv2D(4, kernel_size=2)


@pytest.mark.parametrize("kernel_size, shape", [(1, (3, 4, 2)), (3, (4, 5, 3)), (5, (3, 2, 2))])
def test_triangular_conv_at_pixels_is_the_full_convolution_read_at_those_pixels(kernel_size, shape):
    """Every pixel, corners and borders included, each example at its own pixel."""
    layer = heads_lib.TriangularConv2D(4, kernel_size)
    h, w = shape[:2]
    x = tf.random.stateless_normal((h * w,) + shape, seed=(1, kernel_size))
    layer.build(x.shape)
    layer.bias.assign(tf.random.stateless_normal((4,), seed=(2, 0)))
    pixels = tf.random.experimental.stateless_shuffle(tf.range(h * w), seed=(3, 0))
    full = tf.reshape(layer(x), (h * w, h * w, 4))
    expected = tf.gather(full, pixels, axis=1, batch_dims=1)
    np.testing.assert_allclose(
        layer.at_pixels(x, pixels).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5
    )


def test_forecast_heads_at_pixels_are_the_heads_read_at_those_pixels():
    heads = heads_lib.ForecastHeads(steps=3, channels=2, categories=5, filters=6)
    h = tf.random.stateless_normal((20, 4, 5, 7), seed=(0, 4))
    heads.build(h.shape)
    pixels = tf.random.experimental.stateless_shuffle(tf.range(20), seed=(5, 0))
    full = tf.reshape(heads(h), (20, 20, 3, 2, 5))
    expected = tf.gather(full, pixels, axis=1, batch_dims=1)
    got = heads.at_pixels(h, pixels)
    assert got.shape == (20, 3, 2, 5)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_forecast_heads_shape_receptive_field_and_config():
    heads = heads_lib.ForecastHeads(steps=4, channels=3, categories=5, filters=6)
    h = tf.random.stateless_normal((2, 4, 5, 7), seed=(0, 3))
    assert heads(h).shape == (2, 4, 5, 4, 3, 5)

    # Pixel a's logits read h at pixels <= a only (h[q] itself depends on pixels < q).
    def outputs(hh):
        return tf.reshape(heads(hh), (1, 4, 5, -1))

    for r in range(4):
        for c in range(5):
            field = receptive_field(outputs, (4, 5, 7), (r, c))
            expected = {
                (r + dr, c + dc)
                for dr, dc in [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0)]
                if 0 <= r + dr < 4 and 0 <= c + dc < 5
            }
            assert field == expected, (r, c)
    config = heads.get_config()
    assert heads_lib.ForecastHeads.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="steps"):
        heads_lib.ForecastHeads(0, 1, 2, 4)


def test_noise_window_lists_the_variables_each_pixel_forecasts():
    window = heads_lib.noise_window_indices((2, 2, 3), steps=2)  # d = 12, C + T - 1 = 4
    np.testing.assert_array_equal(window[0], [1, 2, 3, 4])
    np.testing.assert_array_equal(window[3], [10, 11, 12, 12])  # 12 = d: padding


def test_unshared_heads_read_x_before_the_pixel_and_the_noise_of_its_window():
    image_shape, k, steps = (3, 4, 2), 3, 2
    heads = heads_lib.UnsharedForecastHeads(steps, image_shape, k, filters=6)
    x = tf.constant(np.random.default_rng(0).integers(0, k, size=(1,) + image_shape), tf.int32)
    noise = tf.random.stateless_normal((1,) + image_shape + (k,), seed=(1, 1))
    logits = heads(x, noise)
    assert logits.shape == (1, 3, 4, steps, 2, k)
    window = heads_lib.noise_window_indices(image_shape, steps)
    d = int(np.prod(image_shape))
    for position in range(d):
        r, c, ch = np.unravel_index(position, image_shape)
        x_moved = x.numpy().copy()
        x_moved[0, r, c, ch] = (x_moved[0, r, c, ch] + 1) % k
        diff = np.abs(heads(tf.constant(x_moved), noise).numpy() - logits.numpy())
        changed = {tuple(p) for p in np.argwhere(diff.reshape(3, 4, -1).max(-1) > 0)}
        pixel = r * 4 + c
        assert all(q[0] * 4 + q[1] > pixel for q in changed), (position, changed)
        noise_moved = noise.numpy().copy()
        noise_moved[0, r, c, ch] += 1.0
        diff = np.abs(heads(x, tf.constant(noise_moved)).numpy() - logits.numpy())
        changed = {q[0] * 4 + q[1] for q in np.argwhere(diff.reshape(3, 4, -1).max(-1) > 0)}
        assert changed == {a for a in range(12) if position in window[a]}, position
    config = heads.get_config()
    assert heads_lib.UnsharedForecastHeads.from_config(config).get_config() == config


# ----------------------------------------------------------------------------- mixed precision


@contextlib.contextmanager
def global_policy(name):
    """The global Keras policy `name` inside, float32 again after."""
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_heads_and_the_arm_give_float32_logits_under_mixed_bfloat16():
    with global_policy("mixed_bfloat16"):
        model = pixelcnn.PixelCNN((4, 5, 2), 3, num_resnets=1, filters=6)
        heads = heads_lib.heads_for_model(model, steps=2)
        unshared = heads_lib.heads_for_model(model, steps=2, shared=False)
        x = tf.constant(np.random.default_rng(0).integers(0, 3, size=(20, 4, 5, 2)), tf.int32)
        logits, h = model(x)
        assert logits.dtype == tf.float32
        assert h.dtype == tf.bfloat16  # the compute dtype: what the heads read
        forecasts = heads(h)
        assert forecasts.dtype == tf.float32 and forecasts.shape == (20, 4, 5, 2, 2, 3)
        noise = noise_lib.posterior_gumbel_noise(logits, x, 0)
        assert unshared(x, noise).dtype == tf.float32
        pixels = tf.random.experimental.stateless_shuffle(tf.range(20), seed=(5, 0))
        got = heads.at_pixels(h, pixels)
        expected = tf.gather(tf.reshape(forecasts, (20, 20, 2, 2, 3)), pixels, axis=1, batch_dims=1)
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0.05, atol=0.05)


def read_validation_tags(logdir):
    """The scalar tags written to TensorBoard under logdir/validation."""
    tags = set()
    for path in glob.glob(os.path.join(logdir, "validation", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.parametrize("jit_compile", [False, True])
def test_heads_train_under_mixed_bfloat16_and_the_run_samples_exactly(
    tmp_path, tiny_config, jit_compile
):
    # Every paper preset trains heads (T >= 1); the README's scale-up command adds bfloat16, XLA.
    config = tiny_config(
        steps=2, forecast_steps=2, mixed_precision="mixed_bfloat16", jit_compile=jit_compile
    )
    metrics = training.train(config, str(tmp_path))
    # The run's policy is scoped to it: the caller's (float32) is back.
    assert keras.mixed_precision.global_policy().name == "float32"
    assert metrics["step"] == 2 and np.isfinite(metrics["test_bpd"])
    assert {"forecast_accuracy/learned", "forecast_accuracy/fpi"} <= read_validation_tags(
        str(tmp_path)
    )
    # Loaded in float32, the run samples exactly: every method gives the ancestral sample.
    model, loaded = training.load_trained(str(tmp_path))
    assert model.compute_dtype == "float32"
    sampler = predictive.sampler_for_model(model, heads=loaded["forecast_heads"])
    noise = noise_lib.gumbel_noise((3, 8, 8, 1, model.num_categories), 5)
    ancestral = sampler.sample(noise, "ancestral").samples.numpy()
    for method in ("fpi", "learned"):
        np.testing.assert_array_equal(sampler.sample(noise, method).samples.numpy(), ancestral)
