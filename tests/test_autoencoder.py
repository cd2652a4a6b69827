"""Tests for tfps/models/autoencoder.py: the discrete autoencoder's layers, quantisation and
objective ([1, sec. 4.2, Appendix A.3])."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import autoencoder, pixelcnn
from tfps.sampling import protocol
from tfps.train import autoencoder_training


def _autoencoder(image_shape=(8, 8, 1), num_levels=17, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    config = {**dict(width=8, latent_channels=4, latent_categories=8), **kwargs}
    return autoencoder.DiscreteAutoencoder(image_shape, num_levels, **config)


def _random_images(image_shape, num_levels, batch=3, seed=0):
    return np.random.default_rng(seed).integers(
        0, num_levels, (batch,) + tuple(image_shape), dtype=np.int32
    )


# ----------------------------------------------------------------------------- architecture


@pytest.mark.parametrize(
    "image_shape, num_levels, latent_channels, latent_categories",
    [
        ((8, 8, 1), 17, 4, 8),  # the tests' tiny configuration: latent 2 x 2 x 4
        ((32, 32, 1), 256, 4, 32),  # the embedded configuration on digits32: latent 8 x 8 x 4
        ((32, 32, 3), 256, 4, 128),  # the paper's: colour, latent 4 x 8 x 8, 128 categories
    ],
)
def test_encoder_and_decoder_shapes(image_shape, num_levels, latent_channels, latent_categories):
    model = _autoencoder(
        image_shape,
        num_levels,
        latent_channels=latent_channels,
        latent_categories=latent_categories,
    )
    h, w = image_shape[0] // 4, image_shape[1] // 4
    assert model.latent_shape == (h, w, latent_channels)
    x = _random_images(image_shape, num_levels)
    x_hat, z, logits = model(x)
    assert x_hat.shape == (3,) + image_shape and x_hat.dtype == tf.float32
    assert z.shape == logits.shape == (3, h, w, latent_channels, latent_categories)
    # z is exactly one-hot, at the argmax of the logits.
    np.testing.assert_array_equal(np.sort(np.unique(z.numpy())), [0.0, 1.0])
    np.testing.assert_array_equal(z.numpy().sum(-1), 1.0)
    codes = model.encode(x)
    assert codes.shape == (3, h, w, latent_channels) and codes.dtype == tf.int32
    np.testing.assert_array_equal(codes.numpy(), np.argmax(z.numpy(), -1))
    np.testing.assert_allclose(model.decode(codes).numpy(), x_hat.numpy(), atol=1e-5)
    np.testing.assert_allclose(model.decode(z).numpy(), x_hat.numpy(), atol=1e-5)


def test_encoder_has_the_papers_layers():
    encoder = autoencoder.Encoder(512, 4, 128)
    encoder.build((None, 32, 32, 3))
    assert [
        encoder.conv_in1.filters,
        encoder.conv_in2.filters,
        encoder.down1.filters,
        encoder.down2.filters,
    ] == [256, 256, 256, 512]
    assert encoder.down1.kernel_size == encoder.down2.kernel_size == (4, 4)
    assert encoder.down1.strides == encoder.down2.strides == (2, 2)
    assert encoder.to_latent.filters == 4 * 128 and encoder.to_latent.kernel_size == (1, 1)
    decoder = autoencoder.Decoder(512, 4, 128, 3)
    decoder.build((None, 8, 8, 4, 128))
    assert [
        decoder.up1.filters,
        decoder.up2.filters,
        decoder.conv_out1.filters,
        decoder.conv_out2.filters,
    ] == [512, 256, 256, 3]


def test_layers_round_trip_their_config():
    for layer, input_shape in [
        (autoencoder.BasicBlock(8), (2, 4, 4, 8)),
        (autoencoder.Encoder(8, 2, 5), (2, 8, 8, 3)),
        (autoencoder.Decoder(8, 2, 5, 3), (2, 2, 2, 2, 5)),
    ]:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        assert clone(tf.zeros(input_shape)).shape == layer(tf.zeros(input_shape)).shape
    model = _autoencoder()
    clone = autoencoder.DiscreteAutoencoder.from_config(model.get_config())
    assert clone.model_config() == model.model_config()
    assert autoencoder.build_autoencoder(model.model_config()).latent_shape == model.latent_shape


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_shape=(28, 30, 1)), "divisible by 4"),
        (dict(width=7), "width"),
        (dict(latent_categories=1), "latent_categories"),
    ],
)
def test_invalid_autoencoders_are_refused(kwargs, message):
    arguments = {
        **dict(image_shape=(8, 8, 1), num_levels=17, width=8, latent_categories=8),
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        autoencoder.DiscreteAutoencoder(**arguments)


def test_config_validation_names_the_field():
    for field, value in [
        ("width", 3),
        ("latent_channels", 0),
        ("latent_categories", 1),
        ("steps", 0),
        ("learning_rate", 0.0),
        ("dataset", "nope"),
    ]:
        with pytest.raises(ValueError, match=field):
            autoencoder_training.AutoencoderConfig(**{field: value}).validate()
    paper = autoencoder_training.AutoencoderConfig().validate()
    assert (paper.width, paper.latent_channels, paper.latent_categories, paper.steps) == (
        512,
        4,
        128,
        50000,
    )


# ----------------------------------------------------------------------------- quantisation


def test_straight_through_is_one_hot_forward_with_the_softmax_gradient():
    logits = tf.random.stateless_normal((4, 3, 2, 7), [1, 2]) * 3.0
    weights = tf.random.stateless_normal((4, 3, 2, 7), [3, 4])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        z = autoencoder.straight_through_one_hot(logits)
        through_z = tf.reduce_sum(weights * z**2)  # a nonlinear function of z
        probs = tf.nn.softmax(logits)
        # The same function with z replaced by the softmax, its upstream gradient evaluated at z.
        through_softmax = tf.reduce_sum(2.0 * weights * tf.stop_gradient(z) * probs)
    np.testing.assert_array_equal(z.numpy(), tf.one_hot(tf.argmax(logits, -1), 7).numpy())
    np.testing.assert_allclose(
        tape.gradient(through_z, logits).numpy(),
        tape.gradient(through_softmax, logits).numpy(),
        atol=1e-6,
    )
    # Linear in z: exactly the softmax's gradient.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        linear_z = tf.reduce_sum(weights * autoencoder.straight_through_one_hot(logits))
        linear_softmax = tf.reduce_sum(weights * tf.nn.softmax(logits))
    np.testing.assert_allclose(
        tape.gradient(linear_z, logits).numpy(),
        tape.gradient(linear_softmax, logits).numpy(),
        atol=1e-6,
    )


def test_reconstruction_gradient_reaches_the_encoder():
    model = _autoencoder()
    x = _random_images((8, 8, 1), 17)
    with tf.GradientTape() as tape:
        loss, _ = autoencoder.autoencoder_loss(model, x)
    grads = tape.gradient(loss, model.encoder.trainable_variables)
    assert all(g is not None for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0.0


def test_loss_with_a_prior_adds_beta_times_the_rate():
    model = _autoencoder()
    keras.utils.set_random_seed(1)
    prior = pixelcnn.PixelCNN(
        model.latent_shape, model.latent_categories, num_resnets=1, filters=8, dropout_rate=0.0
    )
    x = _random_images((8, 8, 1), 17)
    plain, plain_terms = autoencoder.autoencoder_loss(model, x, training=False)
    assert set(plain_terms) == {"mse"} and float(plain) == pytest.approx(float(plain_terms["mse"]))
    with tf.GradientTape() as tape:
        total, terms = autoencoder.autoencoder_loss(model, x, prior=prior, training=False)
    # The rate is -log P(z) per image dimension, P the ARM on the integer latents.
    codes = model.encode(x)
    logits, _ = prior(codes, training=False)
    expected_rate = float(tf.reduce_mean(-protocol.log_prob(logits, codes))) / 64
    assert float(terms["rate"]) == pytest.approx(expected_rate, rel=1e-5)
    assert float(terms["mse"]) == pytest.approx(float(plain_terms["mse"]), rel=1e-6)
    assert float(total) == pytest.approx(float(terms["mse"]) + 0.1 * expected_rate, rel=1e-5)
    grads = tape.gradient(
        terms["rate"], model.encoder.trainable_variables + prior.trainable_variables
    )
    assert all(g is not None for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0.0
