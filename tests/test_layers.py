"""Tests for tfps/models/layers.py: receptive fields of shifted convolutions, channel masks,
configs."""

import numpy as np
import pytest
import tensorflow as tf

from tfps.models import layers

from oracles import receptive_field


@pytest.mark.parametrize(
    "shift,kernel,expected",
    [
        ("down", (2, 3), {(r, c) for r in (2, 3) for c in (1, 2, 3)}),
        ("down_right", (2, 2), {(r, c) for r in (2, 3) for c in (1, 2)}),
        ("down_right", (2, 1), {(2, 2), (3, 2)}),
        ("down", (1, 3), {(3, 1), (3, 2), (3, 3)}),
    ],
)
def test_shifted_conv_sees_only_rows_above_and_columns_left(shift, kernel, expected):
    layer = layers.ShiftedConv2D(4, kernel, shift)
    assert receptive_field(layer, (6, 6, 2), (3, 2)) == expected


@pytest.mark.parametrize(
    "shift,kernel,expected",
    [
        # Output (1, 2) of a stride-2 conv sees what input (2, 4) sees: rows 1..2, cols 3..5 / 3..4.
        ("down", (2, 3), {(r, c) for r in (1, 2) for c in (3, 4, 5)}),
        ("down_right", (2, 2), {(r, c) for r in (1, 2) for c in (3, 4)}),
    ],
)
def test_strided_shifted_conv_sees_what_its_full_resolution_position_sees(shift, kernel, expected):
    layer = layers.ShiftedConv2D(4, kernel, shift, strides=2)
    assert layer(tf.zeros((1, 7, 8, 2))).shape == (1, 4, 4, 4)
    assert receptive_field(layer, (7, 8, 2), (1, 2)) == expected


@pytest.mark.parametrize(
    "shift,expected",
    [
        # High-resolution (5, 5) hears low-resolution rows a with 2a <= 5 <= 2a + 1 ...
        ("down", {(2, 2), (2, 3)}),  # ... and columns b with 2b - 1 <= 5 <= 2b + 1;
        ("down_right", {(2, 2)}),  # ... and columns b with 2b <= 5 <= 2b + 1.
    ],
)
def test_shifted_transposed_conv_reaches_only_positions_at_or_after_2a_2b(shift, expected):
    layer = layers.ShiftedConv2DTranspose(3, shift)
    assert layer(tf.zeros((1, 4, 4, 2)), size=(7, 8)).shape == (1, 7, 8, 3)
    assert receptive_field(lambda x: layer(x, size=(7, 8)), (4, 4, 2), (5, 5)) == expected
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
    np.testing.assert_array_equal(
        layers.down_shift(x)[0, :, :, 0], [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    )
    np.testing.assert_array_equal(
        layers.right_shift(x)[0, :, :, 0], [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    )


def test_concat_elu_doubles_channels():
    x = tf.constant([[1.0, -2.0]])
    np.testing.assert_allclose(
        layers.concat_elu(x), [[1.0, np.expm1(-2.0), np.expm1(-1.0), 2.0]], rtol=1e-6
    )


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
