"""Tests for tfps/train/autoencoder_training.py, tfps/train/latents.py and the latent paths of the
launchers ([1, sec. 4.2]).

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

from tfps.data import builtin as tfps_data
from tfps.data import latents as data_latents
from tfps.models import autoencoder
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive
from tfps.serving import decoder as decoder_lib
from tfps.train import autoencoder_training, rundir, training
from tfps.train import metrics as metrics_lib

import oracles
from launchers import launch, launch_here

_TINY_AE = dict(
    dataset="digits",
    width=16,
    latent_channels=4,
    latent_categories=8,
    batch_size=32,
    learning_rate=3e-3,
    lr_decay=1.0,
    log_every=10,
    eval_every=20,
    checkpoint_every=20,
    eval_batches=2,
    seed=0,
)


def tiny_ae_config(**overrides):
    return autoencoder_training.AutoencoderConfig(**{**_TINY_AE, "steps": 60, **overrides})


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A 60-step autoencoder on digits: `(logdir, metrics)`. Copy before changing it."""
    logdir = str(tmp_path_factory.mktemp("ae_run"))
    return logdir, autoencoder_training.train_autoencoder(tiny_ae_config(), logdir)


@pytest.fixture(scope="module")
def latent_arm_run(tmp_path_factory, ae_run):
    """A 40-step PixelCNN on the frozen encoder's 2 x 2 x 4 latents: `(logdir, metrics)`."""
    logdir = str(tmp_path_factory.mktemp("latent_arm_run"))
    config = training.TrainConfig(
        dataset="digits",
        num_resnets=1,
        filters=16,
        batch_size=32,
        steps=40,
        learning_rate=3e-3,
        log_every=20,
        eval_every=20,
        checkpoint_every=20,
        eval_batches=2,
        latents_from=ae_run[0],
    )
    return logdir, training.train(config, logdir)


# ----------------------------------------------------------------------------- training


def test_reconstruction_mse_falls_in_a_short_run(ae_run):
    logdir, metrics = ae_run
    keras.utils.set_random_seed(0)  # the run's initialisation
    untrained = autoencoder.DiscreteAutoencoder((8, 8, 1), 17, 16, 4, 8)
    validation, _ = tfps_data.load("digits", "validation")
    before = autoencoder_training.evaluate(untrained, validation, 32, max_batches=2)["mse"]
    assert metrics["step"] == 60
    assert metrics["validation_mse"] < 0.5 * before
    assert metrics["test_mse"] < 0.5 * before
    with open(os.path.join(logdir, rundir.METRICS_FILE)) as f:
        assert json.load(f)["test_mse"] == pytest.approx(metrics["test_mse"])
    assert 0.0 < metrics["test_categories_used"] <= 1.0


def test_autoencoder_run_resumes_and_refuses_other_models(ae_run, tmp_path):
    logdir = str(tmp_path / "run")
    shutil.copytree(ae_run[0], logdir)
    with open(os.path.join(logdir, rundir.CONFIG_FILE)) as f:
        config = json.load(f)
    assert config["format"] == autoencoder_training.AUTOENCODER_FORMAT
    assert config["model"]["latent_categories"] == 8 and config["dataset"]["name"] == "digits"
    again = autoencoder_training.train_autoencoder(
        tiny_ae_config(), logdir
    )  # complete: evaluates only
    assert (again["start_step"], again["step"]) == (60, 60)
    assert again["test_mse"] == pytest.approx(ae_run[1]["test_mse"], rel=1e-5)
    with pytest.raises(rundir.ConfigConflictError, match="width"):
        autoencoder_training.train_autoencoder(tiny_ae_config(width=8), logdir)


def test_loading_checks_the_kind_of_run(ae_run, latent_arm_run):
    model, config = autoencoder_training.load_autoencoder(ae_run[0])
    assert config["step"] == 60 and model.latent_shape == (2, 2, 4)
    with pytest.raises(rundir.CheckpointError, match="not an autoencoder run"):
        autoencoder_training.load_autoencoder(latent_arm_run[0])
    with pytest.raises(rundir.CheckpointError, match="cannot build the model"):
        training.load_trained(ae_run[0])
    with pytest.raises(rundir.CheckpointNotFoundError):
        autoencoder_training.load_autoencoder(os.path.join(ae_run[0], "missing"))


def test_latent_arm_trains_on_the_frozen_encoders_latents(ae_run, latent_arm_run):
    logdir, metrics = latent_arm_run
    model, config = training.load_trained(logdir)
    assert model.image_shape == (2, 2, 4) and model.num_categories == 8
    dataset = config["dataset"]
    _, ae_config = autoencoder_training.load_autoencoder(ae_run[0])
    assert dataset["autoencoder_checkpoint"] == os.path.abspath(ae_config["checkpoint"])
    assert dataset["images"]["image_shape"] == [8, 8, 1]
    assert dataset["dimension_reduction"] == 4.0
    assert config["train"]["latents_from"] == ae_run[0]
    assert metrics["test_bpd"] < metrics["uniform_bpd"]
    assert metrics["test_bits_per_image_dim"] == pytest.approx(metrics["test_bpd"] / 4.0)
    # The latents it saw are the frozen encoder's, cached per checkpoint and split.
    autoencoder, _ = autoencoder_training.load_autoencoder(ae_run[0])
    test_images, _ = tfps_data.load_numpy("digits", "test")
    expected = autoencoder.encode(test_images).numpy()
    (cached,) = glob.glob(os.path.join(ae_run[0], data_latents.LATENTS_DIR, "*-test.npy"))
    np.testing.assert_array_equal(np.load(cached), expected)
    latents = tf.data.Dataset.from_tensor_slices(expected)
    bpd = metrics_lib.evaluate_bpd(model, latents, 64)
    assert bpd == pytest.approx(metrics["test_bpd"], rel=1e-5)


def test_papers_colour_configuration_runs_on_tfds_cifar10(tmp_path):
    # No network here: tfds's mock data stands in for CIFAR10 (32x32x3, 8 bit).
    ae_dir, arm_dir = str(tmp_path / "ae"), str(tmp_path / "arm")
    with tfds.testing.mock_data(num_examples=8):
        ae = autoencoder_training.train_autoencoder(
            tiny_ae_config(dataset="cifar10", width=8, steps=2, batch_size=4, eval_batches=1),
            ae_dir,
        )
        assert ae["latent_shape"] == [8, 8, 4] and ae["dataset"] == "cifar10"
        arm = training.train(
            training.TrainConfig(
                dataset="cifar10",
                num_resnets=1,
                filters=8,
                steps=2,
                batch_size=4,
                eval_batches=1,
                latents_from=ae_dir,
            ),
            arm_dir,
        )
    assert arm["dataset"] == "cifar10:latents"
    assert arm["test_bits_per_image_dim"] == pytest.approx(arm["test_bpd"] / 12.0)  # the paper's 12
    model, config = training.load_trained(arm_dir)
    samples = predictive.sampler_for_model(model).sample_from_seed(0, 2, "fpi").samples
    images = decoder_lib.load_decoder(config).decode(samples)
    assert images.shape == (2, 32, 32, 3)


def test_latent_arm_refuses_another_dataset(ae_run, tmp_path):
    config = training.TrainConfig(
        dataset="digits32", num_resnets=0, filters=4, steps=1, latents_from=ae_run[0]
    )
    with pytest.raises(ValueError, match="dataset='digits'"):
        training.train(config, str(tmp_path))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(num_scales=3),
            r"num_scales=3 is too many for digits's latents: 2x2 allows at most 2",
        ),
        (dict(forecast_steps=16), r"forecast_steps must be below d = 16 for digits's latents"),
    ],
)
def test_latent_arm_checks_its_size_against_the_latents(ae_run, tmp_path, overrides, message):
    """The 8x8 digits allow 4 scales and 63 forecast steps, their 2x2x4 latents 2 and 15: the
    latent check refuses before anything is written to the run directory."""
    config = training.TrainConfig(
        dataset="digits", num_resnets=0, filters=4, steps=1, latents_from=ae_run[0], **overrides
    ).validate()
    with pytest.raises(ValueError, match=message):
        training.train(config, str(tmp_path))
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- sampling, decoding


def test_every_sampler_method_is_exact_on_the_latent_arm(latent_arm_run):
    model, _ = training.load_trained(latent_arm_run[0])
    sampler = predictive.sampler_for_model(model)
    assert set(sampler.methods) >= {"ancestral", "zeros", "last", "fpi", "fpi_argmax"}
    for seed in range(2):
        noise = noise_lib.gumbel_noise((3, 2, 2, 4, 8), seed)
        reference = oracles.ancestral_reference(model, noise)
        for method in sampler.methods:
            result = sampler.sample(noise, method)
            np.testing.assert_array_equal(
                result.samples.numpy(), reference, err_msg=f"method {method}, seed {seed}"
            )
            assert 1 <= int(result.arm_calls) <= 16


def test_decode_of_a_sample_is_deterministic(ae_run, latent_arm_run):
    model, config = training.load_trained(latent_arm_run[0])
    samples = predictive.sampler_for_model(model).sample_from_seed(0, 4, "fpi").samples
    decoder = decoder_lib.load_decoder(config)
    first = decoder.decode(samples).numpy()
    assert first.shape == (4, 8, 8, 1) and first.dtype == np.float32
    assert first.min() >= -1.0 and first.max() <= 1.0
    np.testing.assert_array_equal(decoder.decode(samples).numpy(), first)
    again = decoder_lib.load_decoder(rundir.read_config(latent_arm_run[0]))  # a fresh load
    np.testing.assert_array_equal(again.decode(samples.numpy()).numpy(), first)
    autoencoder, _ = autoencoder_training.load_autoencoder(ae_run[0])
    np.testing.assert_allclose(
        np.clip(autoencoder.decode(samples).numpy(), -1, 1), first, atol=1e-6
    )
    levels = decoder.to_levels(first).numpy()
    assert levels.dtype == np.int32 and levels.min() >= 0 and levels.max() <= 16
    with pytest.raises(ValueError, match=r"latents values must lie in \[0, 8\)"):
        decoder.decode(np.full((1, 2, 2, 4), 8, np.int32))
    assert decoder_lib.decoder_for(rundir.read_config(latent_arm_run[0])) is not None


def test_image_arms_have_no_decoder(tiny_run):
    assert decoder_lib.decoder_for(rundir.read_config(tiny_run[0])) is None
    with pytest.raises(ValueError, match="not an ARM trained on autoencoder latents"):
        decoder_lib.load_decoder(rundir.read_config(tiny_run[0]))


def test_latent_picture_puts_channels_side_by_side():
    latents = np.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4) % 8
    picture = decoder_lib.latent_picture(latents, 8)
    assert picture.shape == (2, 2, 12, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(
        picture[:, :, 3:6, 0], np.round(255 * latents[..., 1] / 7).astype(np.uint8)
    )


# ----------------------------------------------------------------------------- launchers


def test_launchers_train_sample_and_benchmark_a_latent_arm(tmp_path):
    ae_dir, arm_dir, out = (str(tmp_path / name) for name in ("ae", "arm", "samples"))
    proc = launch(
        "launch.train_autoencoder",
        f"--logdir={ae_dir}",
        "--config=configs/latent_autoencoder.py",
        "--config.data.dataset=digits",
        "--config.model.width=8",
        "--config.model.latent_categories=8",
        "--config.training.steps=4",
        "--config.training.batch_size=16",
        "--config.training.eval_batches=1",
        "--config.training.log_every=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test mse" in proc.stdout and "latent [2, 2, 4]" in proc.stdout
    # The default dataset: the ARM takes the autoencoder's.
    latents_from = f"--config.data.latents_from={ae_dir}"
    proc = launch_here(
        "launch.train",
        f"--logdir={arm_dir}",
        "--config=configs/latent_arm.py",
        latents_from,
        "--config.model.num_resnets=1",
        "--config.model.filters=8",
        "--config.training.steps=4",
        "--config.training.batch_size=16",
        "--config.training.eval_batches=1",
        "--config.training.log_every=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "digits:latents" in proc.stdout and "bits per image dimension" in proc.stdout
    proc = launch_here(
        "launch.train",
        f"--logdir={tmp_path / 'other'}",
        latents_from,
        "--config.data.dataset=digits32",
    )
    assert proc.returncode != 0 and "dataset='digits32' disagrees" in proc.stderr
    assert not os.path.exists(tmp_path / "other")
    # The preset check allows 4 scales for the 8x8 digits; the 2x2 latents allow 2.
    proc = launch_here(
        "launch.train",
        f"--logdir={tmp_path / 'other'}",
        latents_from,
        "--config.model.num_scales=3",
    )
    assert proc.returncode != 0 and "num_scales=3 is too many for digits's latents" in proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists(tmp_path / "other")

    proc = launch_here(
        "launch.sample",
        f"--model={arm_dir}",
        "--method=fpi",
        "--num_samples=5",
        "--batch_size=2",
        f"--output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = np.load(os.path.join(out, "samples_fpi.npy"))
    images = np.load(os.path.join(out, "images_fpi.npy"))
    assert samples.shape == (5, 2, 2, 4) and images.shape == (5, 8, 8, 1)
    assert images.dtype == np.float32
    assert os.path.getsize(os.path.join(out, "images_fpi.png")) > 0
    assert os.path.getsize(os.path.join(out, "samples_fpi.png")) > 0
    decoder = decoder_lib.load_decoder(rundir.read_config(arm_dir))
    np.testing.assert_allclose(decoder.decode(samples).numpy(), images, atol=1e-6)

    proc = launch_here(
        "launch.benchmark",
        f"--model={arm_dir}",
        "--methods=fpi",
        "--batch_sizes=1",
        "--num_seeds=2",
        "--tfp_peer=false",
        "--scheduled_samples=0",
        f"--output={tmp_path / 'bench'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Table 2 format" in proc.stdout and "Decoding a batch" in proc.stdout
    with open(tmp_path / "bench.json") as f:
        assert set(json.load(f)["decode_seconds"]) == {"1"}


def test_export_of_a_latent_arm_returns_decoded_images(ae_run, latent_arm_run, tmp_path):
    """The export contract gains `images` for latent ARMs: the decoder applied to `samples`."""
    from tfps.serving import export

    path = export.export_trained(latent_arm_run[0], export_root=str(tmp_path), name="latent")
    metadata = export.read_metadata(path)
    assert metadata["signatures"]["sample"]["outputs"]["images"] == {
        "dtype": "float32",
        "shape": [None, 8, 8, 1],
    }
    assert metadata["decoded_images"]["num_levels"] == 17
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["sample"](
        seed=tf.constant([0, 5], tf.int64), batch_size=tf.constant(3), method=tf.constant("fpi")
    )
    assert out["images"].shape == (3, 8, 8, 1) and out["images"].dtype == tf.float32
    decoder = decoder_lib.load_decoder(training.load_trained(latent_arm_run[0])[1])
    np.testing.assert_allclose(
        out["images"].numpy(), decoder.decode(out["samples"]).numpy(), atol=1e-5
    )
    assert "images" not in loaded.signatures["logits"].structured_outputs
