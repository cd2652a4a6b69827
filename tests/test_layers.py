"""Tests for tfps/layers.py: receptive fields of shifted convolutions, channel masks, configs."""
import numpy as np
import pytest
import tensorflow as tf

from tfps import layers


def _receptive_field(layer, shape, out_pos):
    """Input positions (row, col) whose perturbation changes the output at `out_pos`."""
    x = tf.Variable(tf.random.stateless_normal((1,) + shape, seed=(0, 1)))
    with tf.GradientTape() as tape:
        y = layer(x)
        target = tf.reduce_sum(y[0, out_pos[0], out_pos[1]])
    grad = tape.gradient(target, x).numpy()[0]
    return {tuple(p) for p in np.argwhere(np.abs(grad).sum(-1) > 0)}


@pytest.mark.parametrize("shift,kernel,expected", [
    ("down", (2, 3), {(r, c) for r in (2, 3) for c in (1, 2, 3)}),
    ("down_right", (2, 2), {(r, c) for r in (2, 3) for c in (1, 2)}),
    ("down_right", (2, 1), {(2, 2), (3, 2)}),
    ("down", (1, 3), {(3, 1), (3, 2), (3, 3)}),
])
def test_shifted_conv_sees_only_rows_above_and_columns_left(shift, kernel, expected):
    layer = layers.ShiftedConv2D(4, kernel, shift)
    assert _receptive_field(layer, (6, 6, 2), (3, 2)) == expected


@pytest.mark.parametrize("shift,kernel,expected", [
    # Output (1, 2) of a stride-2 conv sees what input (2, 4) sees: rows 1..2, cols 3..5 / 3..4.
    ("down", (2, 3), {(r, c) for r in (1, 2) for c in (3, 4, 5)}),
    ("down_right", (2, 2), {(r, c) for r in (1, 2) for c in (3, 4)}),
])
def test_strided_shifted_conv_sees_what_its_full_resolution_position_sees(shift, kernel, expected):
    layer = layers.ShiftedConv2D(4, kernel, shift, strides=2)
    assert layer(tf.zeros((1, 7, 8, 2))).shape == (1, 4, 4, 4)
    assert _receptive_field(layer, (7, 8, 2), (1, 2)) == expected


@pytest.mark.parametrize("shift,expected", [
    # High-resolution (5, 5) hears low-resolution rows a with 2a <= 5 <= 2a + 1 ...
    ("down", {(2, 2), (2, 3)}),     # ... and columns b with 2b - 1 <= 5 <= 2b + 1;
    ("down_right", {(2, 2)}),       # ... and columns b with 2b <= 5 <= 2b + 1.
])
def test_shifted_transposed_conv_reaches_only_positions_at_or_after_2a_2b(shift, expected):
    layer = layers.ShiftedConv2DTranspose(3, shift)
    assert layer(tf.zeros((1, 4, 4, 2)), size=(7, 8)).shape == (1, 7, 8, 3)
    assert _receptive_field(lambda x: layer(x, size=(7, 8)), (4, 4, 2), (5, 5)) == expected
    clone = layers.ShiftedConv2DTranspose.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_shifted_conv_keeps_spatial_shape_and_round_trips_config():
    layer = layers.ShiftedConv2D(5, (2, 3), "down")
    assert layer(tf.zeros((2, 7, 4, 3))).shape == (2, 7, 4, 5)
    clone = layers.ShiftedConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_shifted_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shift"):
        layers.ShiftedConv2D(4, (2, 3), "up")
    with pytest.raises(ValueError, match="odd width"):
        layers.ShiftedConv2D(4, (2, 2), "down")


def test_shifts_move_content_and_fill_with_zeros():
    x = tf.reshape(tf.range(1, 10, dtype=tf.float32), (1, 3, 3, 1))
    np.testing.assert_array_equal(layers.down_shift(x)[0, :, :, 0], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(layers.right_shift(x)[0, :, :, 0], [[0, 1, 2], [0, 4, 5], [0, 7, 8]])


def test_concat_elu_doubles_channels():
    x = tf.constant([[1.0, -2.0]])
    np.testing.assert_allclose(layers.concat_elu(x), [[1.0, np.expm1(-2.0), np.expm1(-1.0), 2.0]], rtol=1e-6)


def test_channel_masks_are_strictly_autoregressive_over_channels():
    in_mask, out_mask = layers.channel_masks(channels=3, categories=2, hidden_per_channel=4)
    assert in_mask.shape == (6, 12) and out_mask.shape == (12, 6)
    # Path input channel a -> hidden -> output channel b exists only for a < b.
    paths = (in_mask @ out_mask).reshape(3, 2, 3, 2).sum(axis=(1, 3))
    assert np.array_equal(paths > 0, np.triu(np.ones((3, 3), bool), k=1))


def test_channel_head_output_shape_and_masking():
    head = layers.ChannelAutoregressiveHead(channels=3, categories=4, hidden_per_channel=5)
    h = tf.random.stateless_normal((2, 3, 3, 6), seed=(1, 2))
    x = tf.one_hot(tf.zeros((2, 3, 3, 3), tf.int32), 4)
    logits = head(h, x)
    assert logits.shape == (2, 3, 3, 3, 4)
    # Changing channel 1 of the input may change only channel 2's logits.
    x2 = tf.one_hot(tf.constant(np.tile([0, 3, 0], (2, 3, 3, 1)), tf.int32), 4)
    diff = np.abs(head(h, x2).numpy() - logits.numpy()).max(axis=(0, 1, 2, 4))
    assert diff[0] == 0 and diff[1] == 0 and diff[2] > 0


def test_gated_resnet_requires_aux_when_configured():
    block = layers.GatedResnet(4, "down_right", dropout_rate=0.0, use_aux=True)
    with pytest.raises(ValueError, match="aux"):
        block(tf.zeros((1, 3, 3, 4)))
    assert block(tf.zeros((1, 3, 3, 4)), aux=tf.ones((1, 3, 3, 4))).shape == (1, 3, 3, 4)


# ----------------------------------------------------------------------------- forecasting heads


def test_triangular_mask_keeps_the_taps_at_or_before_the_centre():
    np.testing.assert_array_equal(layers.triangular_mask(3)[:, :, 0, 0],
                                  [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


def test_triangular_conv_sees_only_pixels_at_or_before_the_output_in_raster_order():
    layer = layers.TriangularConv2D(4)
    assert _receptive_field(layer, (6, 6, 2), (3, 2)) == {(2, 1), (2, 2), (2, 3), (3, 1), (3, 2)}
    assert layer(tf.zeros((1, 5, 4, 2))).shape == (1, 5, 4, 4)
    assert layers.TriangularConv2D.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="odd"):
        layers.TriangularConv2D(4, kernel_size=2)


@pytest.mark.parametrize("kernel_size, shape", [(1, (3, 4, 2)), (3, (4, 5, 3)), (5, (3, 2, 2))])
def test_triangular_conv_at_pixels_is_the_full_convolution_read_at_those_pixels(kernel_size,
                                                                                 shape):
    """Every pixel, corners and borders included, each example at its own pixel."""
    layer = layers.TriangularConv2D(4, kernel_size)
    h, w = shape[:2]
    x = tf.random.stateless_normal((h * w,) + shape, seed=(1, kernel_size))
    layer.build(x.shape)
    layer.bias.assign(tf.random.stateless_normal((4,), seed=(2, 0)))
    pixels = tf.random.experimental.stateless_shuffle(tf.range(h * w), seed=(3, 0))
    full = tf.reshape(layer(x), (h * w, h * w, 4))
    expected = tf.gather(full, pixels, axis=1, batch_dims=1)
    np.testing.assert_allclose(layer.at_pixels(x, pixels).numpy(), expected.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_forecast_heads_at_pixels_are_the_heads_read_at_those_pixels():
    heads = layers.ForecastHeads(steps=3, channels=2, categories=5, filters=6)
    h = tf.random.stateless_normal((20, 4, 5, 7), seed=(0, 4))
    heads.build(h.shape)
    pixels = tf.random.experimental.stateless_shuffle(tf.range(20), seed=(5, 0))
    full = tf.reshape(heads(h), (20, 20, 3, 2, 5))
    expected = tf.gather(full, pixels, axis=1, batch_dims=1)
    got = heads.at_pixels(h, pixels)
    assert got.shape == (20, 3, 2, 5)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_forecast_heads_shape_receptive_field_and_config():
    heads = layers.ForecastHeads(steps=4, channels=3, categories=5, filters=6)
    h = tf.random.stateless_normal((2, 4, 5, 7), seed=(0, 3))
    assert heads(h).shape == (2, 4, 5, 4, 3, 5)
    # Pixel a's logits read h at pixels <= a only (h[q] itself depends on pixels < q).
    outputs = lambda hh: tf.reshape(heads(hh), (1, 4, 5, -1))
    for r in range(4):
        for c in range(5):
            field = _receptive_field(outputs, (4, 5, 7), (r, c))
            expected = {(r + dr, c + dc) for dr, dc in [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0)]
                        if 0 <= r + dr < 4 and 0 <= c + dc < 5}
            assert field == expected, (r, c)
    config = heads.get_config()
    assert layers.ForecastHeads.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="steps"):
        layers.ForecastHeads(0, 1, 2, 4)


def test_noise_window_lists_the_variables_each_pixel_forecasts():
    window = layers.noise_window_indices((2, 2, 3), steps=2)   # d = 12, C + T - 1 = 4
    np.testing.assert_array_equal(window[0], [1, 2, 3, 4])
    np.testing.assert_array_equal(window[3], [10, 11, 12, 12])   # 12 = d: padding


def test_unshared_heads_read_x_before_the_pixel_and_the_noise_of_its_window():
    image_shape, k, steps = (3, 4, 2), 3, 2
    heads = layers.UnsharedForecastHeads(steps, image_shape, k, filters=6)
    x = tf.constant(np.random.default_rng(0).integers(0, k, size=(1,) + image_shape), tf.int32)
    noise = tf.random.stateless_normal((1,) + image_shape + (k,), seed=(1, 1))
    logits = heads(x, noise)
    assert logits.shape == (1, 3, 4, steps, 2, k)
    window = layers.noise_window_indices(image_shape, steps)
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
    assert layers.UnsharedForecastHeads.from_config(config).get_config() == config
