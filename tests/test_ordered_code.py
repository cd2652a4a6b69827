"""Tests for tfps/models/ordered_code.py: the ordered discrete autoencoder of anytime sampling [1]
(channel-wise quantisation, prefix decoding, the ordered objective) and its training options.

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.data import builtin as tfps_data
from tfps.models import autoencoder, ordered_code
from tfps.train import autoencoder_training, config, rundir

from launchers import launch_here

N, K = 4, 8  # the tiny code: 4 channel maps of 2 x 2 (8x8 images), a codebook of 8 maps


def _model(seed=0, generic=False, **kwargs):
    """A tiny ChannelAutoencoder; `generic`: a codebook of N(0, 1) maps, far apart (a trained
    codebook, not [2]'s small initialisation)."""
    keras.utils.set_random_seed(seed)
    arguments = {**dict(width=8, latent_channels=N, latent_categories=K), **kwargs}
    model = ordered_code.ChannelAutoencoder((8, 8, 1), 17, **arguments)
    if generic:
        model.codebook.assign(np.random.default_rng(seed).normal(size=model.codebook.shape))
    return model


def _images(batch=6, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (batch, 8, 8, 1), dtype=np.int32)


def _digits(batch=32):
    images, _ = tfps_data.load_numpy("digits", "train")
    return images[:batch]


# ----------------------------------------------------------------------------- quantisation


def test_channel_quantisation_picks_the_nearest_map_and_round_trips_codebook_indices():
    model = _model()
    x = _images()
    x_hat, codes, maps = model(x)
    assert model.latent_shape == (N,) and model.map_shape == (2, 2)
    assert codes.shape == (6, N) and codes.dtype == tf.int32
    assert maps.shape == (6, 2, 2, N) and x_hat.shape == (6, 8, 8, 1)
    # Each code is the nearest codebook entry to its whole channel map (brute force).
    flat = np.transpose(maps.numpy(), [0, 3, 1, 2]).reshape(6, N, 1, 4)
    distances = np.sum((flat - model.codebook.numpy()[None, None]) ** 2, axis=-1)
    np.testing.assert_array_equal(codes.numpy(), np.argmin(distances, axis=-1))
    np.testing.assert_array_equal(model.encode(x).numpy(), codes.numpy())
    np.testing.assert_allclose(model.decode(codes).numpy(), x_hat.numpy(), atol=1e-6)
    # Decoding indices to their codebook maps and quantising again gives the same indices.
    for indices in (codes.numpy(), np.random.default_rng(1).integers(0, K, (50, N))):
        code_maps = model.code_maps(indices)
        assert code_maps.shape == (len(indices), 2, 2, N)
        np.testing.assert_array_equal(model.quantise(code_maps).numpy(), indices)


def test_the_channel_autoencoder_round_trips_its_config():
    model = _model()
    config_dict = model.model_config()
    assert config_dict["quantization"] == "channel"
    rebuilt = ordered_code.autoencoder_from_config(config_dict)
    assert isinstance(rebuilt, ordered_code.ChannelAutoencoder)
    assert rebuilt.model_config() == config_dict and rebuilt.latent_shape == (N,)
    clone = ordered_code.ChannelAutoencoder.from_config(model.get_config())
    assert clone.model_config() == config_dict
    # A spatial run's config (no `quantization` key, as written before the option) stays spatial.
    spatial = autoencoder.DiscreteAutoencoder((8, 8, 1), 17, 8, 2, 4)
    assert type(ordered_code.autoencoder_from_config(spatial.model_config())) is type(spatial)
    with pytest.raises(ValueError, match="quantization must be one of .*got 'pixel'"):
        ordered_code.autoencoder_from_config({**config_dict, "quantization": "pixel"})


# ----------------------------------------------------------------------------- prefix decoding


def test_the_prefix_decoder_ignores_every_code_after_j():
    model = _model(generic=True)
    rng = np.random.default_rng(2)
    codes = rng.integers(0, K, (5, N))
    for j in range(1, N + 1):
        decoded = model.decode(codes, num_codes=j).numpy()
        for _ in range(3):  # any codes after j: the same image, bit for bit
            changed = codes.copy()
            changed[:, j:] = rng.integers(0, K, (5, N - j))
            np.testing.assert_array_equal(model.decode(changed, num_codes=j).numpy(), decoded)
        for i in range(j):  # a different code before j: a different image (a generic model)
            changed = codes.copy()
            changed[:, i] = (codes[:, i] + 1 + rng.integers(0, K - 1, 5)) % K
            difference = np.abs(model.decode(changed, num_codes=j).numpy() - decoded)
            assert np.all(difference.reshape(5, -1).max(axis=1) > 1e-4), (i, j)
    np.testing.assert_array_equal(
        model.decode(codes, num_codes=N).numpy(), model.decode(codes).numpy()
    )


def test_prefix_lengths_per_example_and_as_tensors():
    model = _model(generic=True)
    codes = np.random.default_rng(3).integers(0, K, (4, N))
    lengths = np.array([1, 3, 2, 4], np.int32)
    decode = tf.function(lambda c, j: model.decode(c, num_codes=j))
    together = decode(codes, tf.constant(lengths)).numpy()
    for b, j in enumerate(lengths):
        alone = model.decode(codes[b : b + 1], num_codes=int(j)).numpy()
        np.testing.assert_allclose(together[b : b + 1], alone, atol=1e-6)
        np.testing.assert_allclose(
            decode(codes[b : b + 1], tf.constant(j)).numpy(), alone, atol=1e-6
        )


@pytest.mark.parametrize("num_codes", [0, N + 1, -1, True])
def test_a_bad_prefix_length_is_refused(num_codes):
    with pytest.raises(ValueError, match=f"num_codes must be in 1..{N} .*got {num_codes!r}"):
        _model().decode(np.zeros((1, N), np.int32), num_codes=num_codes)


def test_prefix_fractions_of_the_code():
    assert ordered_code.prefix_lengths(16) == {f"{k}_8": 2 * k for k in range(1, 9)}
    assert list(ordered_code.prefix_lengths(4).values()) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert list(ordered_code.prefix_lengths(1).values()) == [1] * 8
    draws = [int(ordered_code.random_prefix_length(tf.constant([0, s]), N)) for s in range(200)]
    assert set(draws) == set(range(1, N + 1))


# ----------------------------------------------------------------------------- objective


def test_the_ordered_loss_is_the_vq_objective_on_the_prefix():
    model = _model()
    x = _images()
    j = 2
    total, values = ordered_code.ordered_loss(model, x, num_codes=j, training=False)
    maps = model.encode_maps(x).numpy()
    quantised = model.code_maps(model.encode(x)).numpy()
    on_prefix = np.mean((maps[..., :j] - quantised[..., :j]) ** 2)
    x_hat = model.decode(model.encode(x), num_codes=j).numpy()
    mse = np.mean((x_hat - model.normalise(x).numpy()) ** 2)
    assert float(values["mse"]) == pytest.approx(mse, rel=1e-5)
    assert float(values["codebook"]) == pytest.approx(on_prefix, rel=1e-5)
    assert float(values["commitment"]) == pytest.approx(on_prefix, rel=1e-5)
    assert float(total) == pytest.approx(mse + 1.25 * on_prefix, rel=1e-5)
    # j = n is the unordered VQ-VAE's loss.
    full, _ = ordered_code.ordered_loss(model, x, num_codes=N, training=False)
    unordered, _ = ordered_code.ordered_loss(model, x, training=False)
    assert float(full) == pytest.approx(float(unordered), rel=1e-6)


def test_each_term_of_the_ordered_loss_trains_what_vq_vae_says():
    """Each term's gradient alone (VQ-VAE, van den Oord et al. 2017, eq. 3): the codebook term
    moves the codebook only (the encoder's maps stopped), by -2 (e - c_k) per use over the prefix
    maps' values (numpy); the commitment term moves the encoder only (the codebook stopped), as
    the gradient of mean (Q(x) - c_z)^2 with c_z a constant; the reconstruction reaches the
    encoder straight through the quantiser and the decoder, never the codebook."""
    model, x, j = _model(generic=True), _images(), 2
    with tf.GradientTape(persistent=True) as tape:
        _, values = ordered_code.ordered_loss(model, x, num_codes=j, training=False)
    encoder, decoder = model.encoder.trainable_variables, model.decoder.trainable_variables

    def gradients(term, variables):  # None (not connected) as zeros
        grads = tape.gradient(values[term], variables)
        return [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
                for g, v in zip(grads, variables)]  # fmt: skip

    def largest(grads):
        return max(np.abs(g).max() for g in grads)

    maps = np.transpose(model.encode_maps(x).numpy(), [0, 3, 1, 2]).reshape(6, N, 4)[:, :j]
    codes = model.encode(x).numpy()[:, :j]
    codebook = model.codebook.numpy()
    expected = np.zeros_like(codebook)  # d/dc_k of the mean over B * h * w * j values
    for b, i in np.ndindex(6, j):
        expected[codes[b, i]] -= 2.0 * (maps[b, i] - codebook[codes[b, i]]) / (6 * 4 * j)
    assert np.abs(expected).max() > 1e-3
    [codebook_grad] = gradients("codebook", [model.codebook])
    np.testing.assert_allclose(codebook_grad, expected, rtol=1e-4, atol=1e-7)
    assert largest(gradients("codebook", encoder + decoder)) == 0.0
    assert np.abs(gradients("commitment", [model.codebook])[0]).max() == 0.0
    assert largest(gradients("commitment", decoder)) == 0.0
    fixed = tf.constant(
        np.transpose(model.code_maps(model.encode(x)).numpy()[..., :j], [0, 3, 1, 2])
    )
    with tf.GradientTape() as oracle_tape:
        mine = tf.transpose(model.encode_maps(x, training=False)[..., :j], [0, 3, 1, 2])
        commitment = tf.reduce_mean(tf.square(mine - fixed))
    for got, want in zip(
        gradients("commitment", encoder), oracle_tape.gradient(commitment, encoder)
    ):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-8)
    assert largest(gradients("commitment", encoder)) > 0.0
    assert np.abs(gradients("mse", [model.codebook])[0]).max() == 0.0
    assert largest(gradients("mse", encoder)) > 0.0 and largest(gradients("mse", decoder)) > 0.0


def test_before_ordered_from_step_the_whole_code_trains_then_a_random_prefix():
    """[1]'s two stages in one run: the loss of a step before `ordered_from_step` is the full
    code's, from it on the loss of the prefix drawn from the step's seed."""
    model, x = _model(), _digits(8)
    loss = ordered_code.training_loss(model, ordered=True, ordered_from_step=10)
    seed = tf.constant([0, 0])
    j = ordered_code.random_prefix_length(seed, N)
    assert int(j) < N  # this seed draws a true prefix, so the two stages differ
    whole = float(ordered_code.ordered_loss(model, x, training=True)[0])
    prefix = float(ordered_code.ordered_loss(model, x, j, training=True)[0])
    assert float(loss(x, seed, tf.constant(9, tf.int64))[0]) == pytest.approx(whole, rel=1e-6)
    assert float(loss(x, seed, tf.constant(10, tf.int64))[0]) == pytest.approx(prefix, rel=1e-6)
    assert whole != pytest.approx(prefix, rel=1e-3)


@pytest.mark.usefixtures("graph_optimizations")
@pytest.mark.slow  # trains
def test_a_few_ordered_steps_reduce_the_prefix_loss():
    model = _model()
    x = _digits()
    loss = ordered_code.training_loss(model, ordered=True)
    optimizer = keras.optimizers.Adam(3e-3)

    def prefix_loss():  # (1/n) sum_j L_j, the expectation the random prefix estimates
        losses = [ordered_code.ordered_loss(model, x, j, training=False)[0] for j in range(1, 5)]
        return float(tf.reduce_mean(losses))

    @tf.function
    def train_step(seed):
        with tf.GradientTape() as tape:
            total, values = loss(x, seed, tf.constant(100, tf.int64))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return values

    before = prefix_loss()
    for step in range(25):
        values = train_step(tf.constant([0, step]))
    assert set(values) == {"mse", "codebook", "commitment"}
    assert prefix_loss() < 0.8 * before


# ----------------------------------------------------------------------------- training runs

TINY = dict(
    dataset="digits", width=8, latent_channels=N, latent_categories=K, batch_size=16, steps=4,
    learning_rate=3e-3, log_every=2, eval_every=2, checkpoint_every=2, eval_batches=2,
)  # fmt: skip
PREFIX_NAMES = [f"mse_prefix/{k}_8" for k in range(1, 9)]


def _tags(directory):
    tags = set()
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.slow  # trains
def test_an_ordered_run_trains_through_the_resumable_loop(tmp_path):
    logdir = str(tmp_path / "ordered")
    nested = config.to_config_dict(config.AutoencoderConfig(**TINY))
    nested.model.quantization, nested.model.ordered = "channel", True
    typed = config.from_config_dict(nested, config.AUTOENCODER)
    metrics = autoencoder_training.train_autoencoder(typed, logdir)
    assert metrics["step"] == 4 and metrics["latent_shape"] == [N]
    prefix = [metrics[f"test_{name}"] for name in PREFIX_NAMES]
    assert all(np.isfinite(prefix)) and prefix[-1] == pytest.approx(metrics["test_mse"])
    assert set(PREFIX_NAMES) | {"prefix_reconstructions"} <= _tags(
        os.path.join(logdir, "validation")
    )
    model_now = autoencoder_training.load_autoencoder(logdir)[0]
    validation_images, _ = tfps_data.load("digits", "validation")
    [picture] = autoencoder_training.prefix_pictures(model_now, validation_images, 3).values()
    assert picture.shape == (1, 3 * 8, 9 * 8, 1) and picture.dtype == tf.uint8
    last = picture.numpy()[0, :8, 8 * 8 :]  # the first image itself, in the last column
    first = next(iter(validation_images)).numpy()
    np.testing.assert_array_equal(last, np.round(first * 255 / 16))
    assert {"mse", "codebook", "commitment"} <= _tags(os.path.join(logdir, "train"))
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        run = json.load(f)
    assert run["model"]["quantization"] == "channel" and run["train"]["ordered"] is True
    model, loaded = autoencoder_training.load_autoencoder(logdir)
    assert isinstance(model, ordered_code.ChannelAutoencoder) and loaded["step"] == 4
    validation, _ = tfps_data.load("digits", "validation")
    again = autoencoder_training.evaluate(model, validation, 16, max_batches=2)
    assert again["mse"] == pytest.approx(metrics["validation_mse"], rel=1e-5)


@pytest.mark.slow  # trains
def test_the_unordered_control_trains_from_launcher_flags(tmp_path):
    logdir = str(tmp_path / "unordered")
    flags = [f"--config.{section}.{key}={value}" for section, key, value in [
        ("data", "dataset", "digits"), ("model", "width", 8), ("model", "latent_channels", N),
        ("model", "latent_categories", K), ("model", "quantization", "channel"),
        ("model", "ordered", "false"), ("training", "batch_size", 16), ("training", "steps", 2),
        ("training", "eval_every", 2), ("training", "eval_batches", 1),
    ]]  # fmt: skip
    proc = launch_here("launch.train_autoencoder", f"--logdir={logdir}", *flags)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        run = json.load(f)
    assert run["model"]["quantization"] == "channel" and run["train"]["ordered"] is False
    assert "test mse" in proc.stdout


@pytest.mark.parametrize("change, message", [
    (dict(quantization="pixel"), "quantization must be one of 'spatial', 'channel', got 'pixel'"),
    (dict(ordered=True), "ordered=True needs quantization='channel'.*got quantization='spatial'"),
    (dict(quantization="channel", ordered="yes"), "ordered must be true or false, got 'yes'"),
    (dict(quantization="channel", commitment=-1.0), "commitment must be >= 0, got -1.0"),
    (dict(quantization="channel", ordered_from_step=2), "ordered_from_step=2 needs ordered=True"),
    (dict(quantization="channel", ordered=True, ordered_from_step=4),
     r"ordered_from_step must be in 0..3, got 4"),
])  # fmt: skip
def test_bad_options_are_one_clear_error_before_anything_is_written(tmp_path, change, message):
    logdir = str(tmp_path / "run")
    with pytest.raises(ValueError, match=message):
        autoencoder_training.train_autoencoder(config.AutoencoderConfig(**TINY, **change), logdir)
    assert not os.path.exists(logdir)


def test_a_bad_option_flag_is_a_usage_error(tmp_path):
    logdir = str(tmp_path / "run")
    proc = launch_here(
        "launch.train_autoencoder", f"--logdir={logdir}", "--config.model.quantization=pixel"
    )
    assert proc.returncode != 0
    assert "quantization must be one of 'spatial', 'channel', got 'pixel'" in proc.stderr
    assert not os.path.exists(logdir)
