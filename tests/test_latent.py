"""Tests for tfps/latent.py and the latent paths of the launchers (seed 000, section 4.2).

The autoencoder here is tiny: the 8x8 `digits` give a 2 x 2 x 4 latent with K = 8 categories, so
the ARM on it has d = 16 variables and the eager ancestral oracle stays cheap.
"""
import glob
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import oracles
from tfps import data as tfps_data
from tfps import latent
from tfps import noise as noise_lib
from tfps import pixelcnn
from tfps import sampling
from tfps import training
from launchers import launch

_TINY_AE = dict(dataset="digits", width=16, latent_channels=4, latent_categories=8,
                batch_size=32, learning_rate=3e-3, lr_decay=1.0, log_every=10, eval_every=20,
                checkpoint_every=20, eval_batches=2, seed=0)


def tiny_ae_config(**overrides):
    return latent.AutoencoderConfig(**{**_TINY_AE, "steps": 60, **overrides})


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A 60-step autoencoder on digits: `(logdir, metrics)`. Copy before changing it."""
    logdir = str(tmp_path_factory.mktemp("ae_run"))
    return logdir, latent.train_autoencoder(tiny_ae_config(), logdir)


@pytest.fixture(scope="module")
def latent_arm_run(tmp_path_factory, ae_run):
    """A 40-step PixelCNN on the frozen encoder's 2 x 2 x 4 latents: `(logdir, metrics)`."""
    logdir = str(tmp_path_factory.mktemp("latent_arm_run"))
    config = training.TrainConfig(dataset="digits", num_resnets=1, filters=16, batch_size=32,
                                  steps=40, learning_rate=3e-3, log_every=20, eval_every=20,
                                  checkpoint_every=20, eval_batches=2, latents_from=ae_run[0])
    return logdir, training.train(config, logdir)


def _autoencoder(image_shape=(8, 8, 1), num_levels=17, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    config = {**dict(width=8, latent_channels=4, latent_categories=8), **kwargs}
    return latent.DiscreteAutoencoder(image_shape, num_levels, **config)


def _random_images(image_shape, num_levels, batch=3, seed=0):
    return np.random.default_rng(seed).integers(0, num_levels, (batch,) + tuple(image_shape),
                                                dtype=np.int32)


# ----------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("image_shape, num_levels, latent_channels, latent_categories", [
    ((8, 8, 1), 17, 4, 8),        # the tests' tiny configuration: latent 2 x 2 x 4
    ((32, 32, 1), 256, 4, 32),    # the embedded configuration on digits32: latent 8 x 8 x 4
    ((32, 32, 3), 256, 4, 128),   # the paper's: colour, latent 4 x 8 x 8, 128 categories
])
def test_encoder_and_decoder_shapes(image_shape, num_levels, latent_channels, latent_categories):
    model = _autoencoder(image_shape, num_levels, latent_channels=latent_channels,
                         latent_categories=latent_categories)
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
    encoder = latent.Encoder(512, 4, 128)
    encoder.build((None, 32, 32, 3))
    assert [encoder.conv_in1.filters, encoder.conv_in2.filters, encoder.down1.filters,
            encoder.down2.filters] == [256, 256, 256, 512]
    assert encoder.down1.kernel_size == encoder.down2.kernel_size == (4, 4)
    assert encoder.down1.strides == encoder.down2.strides == (2, 2)
    assert encoder.to_latent.filters == 4 * 128 and encoder.to_latent.kernel_size == (1, 1)
    decoder = latent.Decoder(512, 4, 128, 3)
    decoder.build((None, 8, 8, 4, 128))
    assert [decoder.up1.filters, decoder.up2.filters, decoder.conv_out1.filters,
            decoder.conv_out2.filters] == [512, 256, 256, 3]


def test_layers_round_trip_their_config():
    for layer, input_shape in [(latent.BasicBlock(8), (2, 4, 4, 8)),
                               (latent.Encoder(8, 2, 5), (2, 8, 8, 3)),
                               (latent.Decoder(8, 2, 5, 3), (2, 2, 2, 2, 5))]:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        assert clone(tf.zeros(input_shape)).shape == layer(tf.zeros(input_shape)).shape
    model = _autoencoder()
    clone = latent.DiscreteAutoencoder.from_config(model.get_config())
    assert clone.model_config() == model.model_config()
    assert latent.build_autoencoder(model.model_config()).latent_shape == model.latent_shape


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_shape=(28, 30, 1)), "divisible by 4"),
    (dict(width=7), "width"),
    (dict(latent_categories=1), "latent_categories"),
])
def test_invalid_autoencoders_are_refused(kwargs, message):
    arguments = {**dict(image_shape=(8, 8, 1), num_levels=17, width=8, latent_categories=8),
                 **kwargs}
    with pytest.raises(ValueError, match=message):
        latent.DiscreteAutoencoder(**arguments)


def test_config_validation_names_the_field():
    for field, value in [("width", 3), ("latent_channels", 0), ("latent_categories", 1),
                         ("steps", 0), ("learning_rate", 0.0), ("dataset", "nope")]:
        with pytest.raises(ValueError, match=field):
            latent.AutoencoderConfig(**{field: value}).validate()
    paper = latent.AutoencoderConfig().validate()
    assert (paper.width, paper.latent_channels, paper.latent_categories, paper.steps) == (
        512, 4, 128, 50000)


# ----------------------------------------------------------------------------- quantisation


def test_straight_through_is_one_hot_forward_with_the_softmax_gradient():
    logits = tf.random.stateless_normal((4, 3, 2, 7), [1, 2]) * 3.0
    weights = tf.random.stateless_normal((4, 3, 2, 7), [3, 4])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        z = latent.straight_through_one_hot(logits)
        through_z = tf.reduce_sum(weights * z ** 2)  # a nonlinear function of z
        probs = tf.nn.softmax(logits)
        # The same function with z replaced by the softmax, its upstream gradient evaluated at z.
        through_softmax = tf.reduce_sum(2.0 * weights * tf.stop_gradient(z) * probs)
    np.testing.assert_array_equal(z.numpy(), tf.one_hot(tf.argmax(logits, -1), 7).numpy())
    np.testing.assert_allclose(tape.gradient(through_z, logits).numpy(),
                               tape.gradient(through_softmax, logits).numpy(), atol=1e-6)
    # Linear in z: exactly the softmax's gradient.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        linear_z = tf.reduce_sum(weights * latent.straight_through_one_hot(logits))
        linear_softmax = tf.reduce_sum(weights * tf.nn.softmax(logits))
    np.testing.assert_allclose(tape.gradient(linear_z, logits).numpy(),
                               tape.gradient(linear_softmax, logits).numpy(), atol=1e-6)


def test_reconstruction_gradient_reaches_the_encoder():
    model = _autoencoder()
    x = _random_images((8, 8, 1), 17)
    with tf.GradientTape() as tape:
        loss, _ = latent.autoencoder_loss(model, x)
    grads = tape.gradient(loss, model.encoder.trainable_variables)
    assert all(g is not None for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0.0


def test_loss_with_a_prior_adds_beta_times_the_rate():
    model = _autoencoder()
    keras.utils.set_random_seed(1)
    prior = pixelcnn.PixelCNN(model.latent_shape, model.latent_categories, num_resnets=1,
                              filters=8, dropout_rate=0.0)
    x = _random_images((8, 8, 1), 17)
    plain, plain_terms = latent.autoencoder_loss(model, x, training=False)
    assert set(plain_terms) == {"mse"} and float(plain) == pytest.approx(float(plain_terms["mse"]))
    with tf.GradientTape() as tape:
        total, terms = latent.autoencoder_loss(model, x, prior=prior, training=False)
    # The rate is -log P(z) per image dimension, P the ARM on the integer latents.
    codes = model.encode(x)
    logits, _ = prior(codes, training=False)
    expected_rate = float(tf.reduce_mean(-pixelcnn.log_prob(logits, codes))) / 64
    assert float(terms["rate"]) == pytest.approx(expected_rate, rel=1e-5)
    assert float(terms["mse"]) == pytest.approx(float(plain_terms["mse"]), rel=1e-6)
    assert float(total) == pytest.approx(float(terms["mse"]) + 0.1 * expected_rate, rel=1e-5)
    grads = tape.gradient(terms["rate"], model.encoder.trainable_variables
                          + prior.trainable_variables)
    assert all(g is not None for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0.0


# ----------------------------------------------------------------------------- training


def test_reconstruction_mse_falls_in_a_short_run(ae_run):
    logdir, metrics = ae_run
    keras.utils.set_random_seed(0)  # the run's initialisation
    untrained = latent.DiscreteAutoencoder((8, 8, 1), 17, 16, 4, 8)
    validation, _ = tfps_data.load("digits", "validation")
    before = latent.evaluate(untrained, validation, 32, max_batches=2)["mse"]
    assert metrics["step"] == 60
    assert metrics["validation_mse"] < 0.5 * before
    assert metrics["test_mse"] < 0.5 * before
    with open(os.path.join(logdir, training.METRICS_FILE)) as f:
        assert json.load(f)["test_mse"] == pytest.approx(metrics["test_mse"])
    assert 0.0 < metrics["test_categories_used"] <= 1.0


def test_autoencoder_run_resumes_and_refuses_other_models(ae_run, tmp_path):
    logdir = str(tmp_path / "run")
    shutil.copytree(ae_run[0], logdir)
    with open(os.path.join(logdir, training.CONFIG_FILE)) as f:
        config = json.load(f)
    assert config["format"] == latent.AUTOENCODER_FORMAT
    assert config["model"]["latent_categories"] == 8 and config["dataset"]["name"] == "digits"
    again = latent.train_autoencoder(tiny_ae_config(), logdir)  # complete: evaluates only
    assert (again["start_step"], again["step"]) == (60, 60)
    assert again["test_mse"] == pytest.approx(ae_run[1]["test_mse"], rel=1e-5)
    with pytest.raises(training.ConfigConflictError, match="width"):
        latent.train_autoencoder(tiny_ae_config(width=8), logdir)


def test_loading_checks_the_kind_of_run(ae_run, latent_arm_run):
    model, config = latent.load_autoencoder(ae_run[0])
    assert config["step"] == 60 and model.latent_shape == (2, 2, 4)
    with pytest.raises(training.CheckpointError, match="not an autoencoder run"):
        latent.load_autoencoder(latent_arm_run[0])
    with pytest.raises(training.CheckpointError, match="cannot build the model"):
        training.load_trained(ae_run[0])
    with pytest.raises(training.CheckpointNotFoundError):
        latent.load_autoencoder(os.path.join(ae_run[0], "missing"))


def test_latent_arm_trains_on_the_frozen_encoders_latents(ae_run, latent_arm_run):
    logdir, metrics = latent_arm_run
    model, config = training.load_trained(logdir)
    assert model.image_shape == (2, 2, 4) and model.num_categories == 8
    dataset = config["dataset"]
    _, ae_config = latent.load_autoencoder(ae_run[0])
    assert dataset["autoencoder_checkpoint"] == os.path.abspath(ae_config["checkpoint"])
    assert dataset["images"]["image_shape"] == [8, 8, 1]
    assert dataset["dimension_reduction"] == 4.0
    assert config["train"]["latents_from"] == ae_run[0]
    assert metrics["test_bpd"] < metrics["uniform_bpd"]
    assert metrics["test_bits_per_image_dim"] == pytest.approx(metrics["test_bpd"] / 4.0)
    # The latents it saw are the frozen encoder's, cached per checkpoint and split.
    autoencoder, _ = latent.load_autoencoder(ae_run[0])
    test_images, _ = tfps_data.load_numpy("digits", "test")
    expected = autoencoder.encode(test_images).numpy()
    (cached,) = glob.glob(os.path.join(ae_run[0], latent.LATENTS_DIR, "*-test.npy"))
    np.testing.assert_array_equal(np.load(cached), expected)
    latents = tf.data.Dataset.from_tensor_slices(expected)
    assert training.evaluate_bpd(model, latents, 64) == pytest.approx(metrics["test_bpd"],
                                                                      rel=1e-5)


def test_papers_colour_configuration_runs_on_tfds_cifar10(tmp_path):
    # No network here: tfds's mock data stands in for CIFAR10 (32x32x3, 8 bit).
    ae_dir, arm_dir = str(tmp_path / "ae"), str(tmp_path / "arm")
    with tfds.testing.mock_data(num_examples=8):
        ae = latent.train_autoencoder(tiny_ae_config(
            dataset="cifar10", width=8, steps=2, batch_size=4, eval_batches=1), ae_dir)
        assert ae["latent_shape"] == [8, 8, 4] and ae["dataset"] == "cifar10"
        arm = training.train(training.TrainConfig(
            dataset="cifar10", num_resnets=1, filters=8, steps=2, batch_size=4, eval_batches=1,
            latents_from=ae_dir), arm_dir)
    assert arm["dataset"] == "cifar10:latents"
    assert arm["test_bits_per_image_dim"] == pytest.approx(arm["test_bpd"] / 12.0)  # the paper's 12
    model, config = training.load_trained(arm_dir)
    samples = sampling.sampler_for_model(model).sample_from_seed(0, 2, "fpi").samples
    images = latent.load_decoder(config).decode(samples)
    assert images.shape == (2, 32, 32, 3)


def test_latent_arm_refuses_another_dataset(ae_run, tmp_path):
    config = training.TrainConfig(dataset="digits32", num_resnets=0, filters=4, steps=1,
                                  latents_from=ae_run[0])
    with pytest.raises(ValueError, match="dataset='digits'"):
        training.train(config, str(tmp_path))


@pytest.mark.parametrize("overrides, message", [
    (dict(num_scales=3), r"num_scales=3 is too many for digits's latents: 2x2 allows at most 2"),
    (dict(forecast_steps=16), r"forecast_steps must be below d = 16 for digits's latents"),
])
def test_latent_arm_checks_its_size_against_the_latents(ae_run, tmp_path, overrides, message):
    """The 8x8 digits allow 4 scales and 63 forecast steps, their 2x2x4 latents 2 and 15: the
    latent check refuses before anything is written to the run directory."""
    config = training.TrainConfig(dataset="digits", num_resnets=0, filters=4, steps=1,
                                  latents_from=ae_run[0], **overrides).validate()
    with pytest.raises(ValueError, match=message):
        training.train(config, str(tmp_path))
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- sampling, decoding


def test_every_sampler_method_is_exact_on_the_latent_arm(latent_arm_run):
    model, _ = training.load_trained(latent_arm_run[0])
    sampler = sampling.sampler_for_model(model)
    assert set(sampler.methods) >= {"ancestral", "zeros", "last", "fpi", "fpi_argmax"}
    for seed in range(2):
        noise = noise_lib.gumbel_noise((3, 2, 2, 4, 8), seed)
        reference = oracles.ancestral_reference(model, noise)
        for method in sampler.methods:
            result = sampler.sample(noise, method)
            np.testing.assert_array_equal(result.samples.numpy(), reference,
                                          err_msg=f"method {method}, seed {seed}")
            assert 1 <= int(result.arm_calls) <= 16


def test_decode_of_a_sample_is_deterministic(ae_run, latent_arm_run):
    model, config = training.load_trained(latent_arm_run[0])
    samples = sampling.sampler_for_model(model).sample_from_seed(0, 4, "fpi").samples
    decoder = latent.load_decoder(config)
    first = decoder.decode(samples).numpy()
    assert first.shape == (4, 8, 8, 1) and first.dtype == np.float32
    assert first.min() >= -1.0 and first.max() <= 1.0
    np.testing.assert_array_equal(decoder.decode(samples).numpy(), first)
    again = latent.load_decoder(training.read_config(latent_arm_run[0]))  # a fresh load
    np.testing.assert_array_equal(again.decode(samples.numpy()).numpy(), first)
    autoencoder, _ = latent.load_autoencoder(ae_run[0])
    np.testing.assert_allclose(np.clip(autoencoder.decode(samples).numpy(), -1, 1), first,
                               atol=1e-6)
    levels = decoder.to_levels(first).numpy()
    assert levels.dtype == np.int32 and levels.min() >= 0 and levels.max() <= 16
    with pytest.raises(ValueError, match=r"latents values must lie in \[0, 8\)"):
        decoder.decode(np.full((1, 2, 2, 4), 8, np.int32))
    assert latent.decoder_for(training.read_config(latent_arm_run[0])) is not None


def test_image_arms_have_no_decoder(tiny_run):
    assert latent.decoder_for(training.read_config(tiny_run[0])) is None
    with pytest.raises(ValueError, match="not an ARM trained on autoencoder latents"):
        latent.load_decoder(training.read_config(tiny_run[0]))


def test_latent_picture_puts_channels_side_by_side():
    latents = np.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4) % 8
    picture = latent.latent_picture(latents, 8)
    assert picture.shape == (2, 2, 12, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture[:, :, 3:6, 0],
                                  np.round(255 * latents[..., 1] / 7).astype(np.uint8))


def test_time_decode_reports_every_batch_size(ae_run):
    autoencoder, config = latent.load_autoencoder(ae_run[0])
    times = latent.time_decode(latent.LatentDecoder(autoencoder, config), (1, 4), range(2))
    assert set(times) == {1, 4} and all(mean > 0 and std >= 0 for mean, std in times.values())
    assert "B=4" in latent.decode_time_line(times)


# ----------------------------------------------------------------------------- launchers


def test_launchers_train_sample_and_benchmark_a_latent_arm(tmp_path):
    ae_dir, arm_dir, out = (str(tmp_path / name) for name in ("ae", "arm", "samples"))
    proc = launch("launch.train_autoencoder", f"--logdir={ae_dir}", "--dataset=digits",
                  "--width=8", "--latent_categories=8", "--steps=4", "--batch_size=16",
                  "--eval_batches=1", "--log_every=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test mse" in proc.stdout and "latent [2, 2, 4]" in proc.stdout
    # No --dataset: the ARM takes the autoencoder's.
    proc = launch("launch.train", f"--logdir={arm_dir}", f"--latents_from={ae_dir}",
                  "--num_resnets=1", "--filters=8", "--steps=4", "--batch_size=16",
                  "--eval_batches=1", "--log_every=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "digits:latents" in proc.stdout and "bits per image dimension" in proc.stdout
    proc = launch("launch.train", f"--logdir={tmp_path / 'other'}", f"--latents_from={ae_dir}",
                  "--dataset=digits32")
    assert proc.returncode != 0 and "--dataset='digits32' disagrees" in proc.stderr
    assert not os.path.exists(tmp_path / "other")
    # The flag validators allow 4 scales for the 8x8 digits; the 2x2 latents allow 2.
    proc = launch("launch.train", f"--logdir={tmp_path / 'other'}", f"--latents_from={ae_dir}",
                  "--num_scales=3")
    assert proc.returncode != 0 and "num_scales=3 is too many for digits's latents" in proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists(tmp_path / "other")

    proc = launch("launch.sample", f"--model={arm_dir}", "--method=fpi", "--num_samples=5",
                  "--batch_size=2", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = np.load(os.path.join(out, "samples_fpi.npy"))
    images = np.load(os.path.join(out, "images_fpi.npy"))
    assert samples.shape == (5, 2, 2, 4) and images.shape == (5, 8, 8, 1)
    assert images.dtype == np.float32
    assert os.path.getsize(os.path.join(out, "images_fpi.png")) > 0
    assert os.path.getsize(os.path.join(out, "samples_fpi.png")) > 0
    decoder = latent.load_decoder(training.read_config(arm_dir))
    np.testing.assert_allclose(decoder.decode(samples).numpy(), images, atol=1e-6)

    proc = launch("launch.benchmark", f"--model={arm_dir}", "--methods=fpi", "--batch_sizes=1",
                  "--num_seeds=2", "--tfp_peer=false", "--scheduled_samples=0",
                  f"--output={tmp_path / 'bench'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Table 2 format" in proc.stdout and "Decoding a batch" in proc.stdout
    with open(tmp_path / "bench.json") as f:
        assert set(json.load(f)["decode_seconds"]) == {"1"}


def test_export_of_a_latent_arm_returns_decoded_images(ae_run, latent_arm_run, tmp_path):
    """The export contract gains `images` for latent ARMs: the decoder applied to `samples`."""
    from tfps import export
    path = export.export_trained(latent_arm_run[0], export_root=str(tmp_path), name="latent")
    metadata = export.read_metadata(path)
    assert metadata["signatures"]["sample"]["outputs"]["images"] == {
        "dtype": "float32", "shape": [None, 8, 8, 1]}
    assert metadata["decoded_images"]["num_levels"] == 17
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["sample"](seed=tf.constant([0, 5], tf.int64),
                                      batch_size=tf.constant(3), method=tf.constant("fpi"))
    assert out["images"].shape == (3, 8, 8, 1) and out["images"].dtype == tf.float32
    decoder = latent.load_decoder(training.load_trained(latent_arm_run[0])[1])
    np.testing.assert_allclose(out["images"].numpy(), decoder.decode(out["samples"]).numpy(),
                               atol=1e-5)
    assert "images" not in loaded.signatures["logits"].structured_outputs
