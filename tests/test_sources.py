"""Tests of tfps.data.open, the one entry to data, and tfps.data.sources: the user's own data
(tfds:NAME, .npz, a folder of images).

Every bad-data case is one DataError naming the file, split and first bad image, raised before
the run directory is touched. Runs from an .npz file and a folder go through launch/train.py as a
user would; the tfds source runs in-process, since `tfds.testing.mock_data` cannot reach a
subprocess.
"""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import tfps.data
from tfps.data import builtin, checks, image_files, sources
from tfps.data import latents as data_latents
from tfps.train import config as config_lib
from tfps.train import rundir, training

from launchers import launch_here

TINY = dict(
    filters=8, num_resnets=1, steps=2, batch_size=8, eval_batches=1, checkpoint_every=2,
    eval_every=2, log_every=1,
)  # fmt: skip
TINY_FLAGS = [
    "--config=configs/digits.py", "--config.model.filters=8", "--config.model.num_resnets=1",
    "--config.training.steps=2", "--config.training.batch_size=8",
    "--config.training.eval_batches=1", "--config.training.log_every=1",
]  # fmt: skip


def tiny(dataset, **overrides):
    return config_lib.TrainConfig(dataset=str(dataset), **{**TINY, **overrides})


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def images(n, shape=(8, 8), high=17, seed=0):
    return np.random.default_rng(seed).integers(0, high, (n, *shape))


def write_folder(folder, n=40, size=(8, 8), mode="L"):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    channels = (3,) if mode == "RGB" else ()
    for i in range(n):
        pixels = rng.integers(0, 256, (*size, *channels), dtype=np.uint8)
        Image.fromarray(pixels, mode).save(os.path.join(folder, f"img{i:03d}.png"))
    return str(folder)


# ------------------------------------------------------------------------- opening the data


def test_npz_carves_missing_splits_with_a_fixed_seed(tmp_path):
    train = images(100)
    opened = tfps.data.open(tiny(write_npz(tmp_path / "d.npz", train=train)))
    sizes = opened.description["split_sizes"]
    assert sizes == {"train": 80, "validation": 10, "test": 10}  # n = 10% of train
    assert opened.info.image_shape == (8, 8, 1) and opened.info.num_categories == 32  # 16 < 2**5
    parts = [
        np.stack(list(opened.load(s).as_numpy_iterator())) for s in ("train", "validation", "test")
    ]
    assert sorted(p.tobytes() for p in np.concatenate(parts)) == sorted(
        p.tobytes() for p in train[..., None].astype(np.int32)
    )
    again = tfps.data.open(tiny(write_npz(tmp_path / "e.npz", train=train)))
    assert np.array_equal(list(again.load("test")), list(opened.load("test")))


def test_npz_with_its_own_splits_and_num_categories(tmp_path):
    path = write_npz(
        tmp_path / "d.npz", train=images(20, (4, 5, 3)), validation=images(3, (4, 5, 3)),
        test=images(2, (4, 5, 3)),
    )  # fmt: skip
    opened = tfps.data.open(tiny(path, num_categories=17, validation_size=1))
    assert opened.info.num_categories == 17 and opened.info.image_shape == (4, 5, 3)
    assert opened.description["split_sizes"] == {"train": 20, "validation": 3, "test": 2}


def test_binarize_thresholds_8_bit_grey(tmp_path):
    train = np.array([[[0, 127], [128, 255]]] * 30)
    opened = tfps.data.open(tiny(write_npz(tmp_path / "d.npz", train=train), binarize=128))
    assert opened.info.num_categories == 2
    first = next(opened.load("train").as_numpy_iterator())
    assert first[..., 0].tolist() == [[0, 0], [1, 1]]


def test_folder_split_is_a_function_of_the_file_name(tmp_path):
    folder = write_folder(tmp_path / "pics", n=40, mode="RGB")
    opened = tfps.data.open(tiny(folder))
    assert opened.info.image_shape == (8, 8, 3) and opened.info.num_categories == 256
    names = sorted(os.listdir(folder))
    expected = {s: sum(image_files.split_of(n) == s for n in names) for s in sources.ARRAY_SPLITS}
    assert opened.description["split_sizes"] == expected
    assert opened.description["fingerprint"].startswith("sha256:")


def test_tfds_source_trains_in_process(tmp_path):
    with tfds.testing.mock_data(num_examples=30):
        config = tiny("tfds:mnist", validation_size=5)
        metrics = training.train(config, str(tmp_path / "run"))
        with pytest.raises(checks.DataError, match="no feature 'pixels'"):
            tfps.data.open(dataclasses.replace(config, image_key="pixels"))
    assert metrics["step"] == 2 and np.isfinite(metrics["test_bpd"])
    described = json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]
    assert described["source"] == "tfds:mnist" and described["image_key"] == "image"
    assert described["image_shape"] == [28, 28, 1] and described["fingerprint"].startswith("tfds")


class FakeAutoencoder:
    """Stands in for a restored autoencoder: every 4th pixel of 8x8 digits, halved (K = 9)."""

    image_shape, latent_shape, latent_categories = (8, 8, 1), (2, 2, 1), 9

    def encode(self, x, training=False):
        return x[:, ::4, ::4, :] // 2


def fake_encoder(run_dir):
    run = {"logdir": str(run_dir), "checkpoint": str(run_dir / "ckpt-7"), "dataset": {"n": 1}}
    return data_latents.Encoder(
        FakeAutoencoder(), run, config_lib.AutoencoderConfig(dataset="digits")
    )


def test_open_is_the_one_entry_for_every_kind_of_data(tmp_path):
    kinds = {
        "builtin": tiny("digits"),
        "npz": tiny(write_npz(tmp_path / "d.npz", train=images(30))),
        "folder": tiny(write_folder(tmp_path / "pics", n=30)),
        "tfds": tiny("tfds:mnist", validation_size=5),
    }
    with tfds.testing.mock_data(num_examples=12):
        opened = {kind: tfps.data.open(config) for kind, config in kinds.items()}
        assert next(opened["tfds"].load("test").as_numpy_iterator()).shape == (28, 28, 1)
    assert opened["builtin"].info == builtin.dataset_info("digits")
    assert opened["builtin"].description == {}
    for kind in ("npz", "folder", "tfds"):
        assert opened[kind].description["kind"] == kind
    # Latents: the caller restores the encoder and passes it down; the data room encodes, caches.
    config = tiny("digits", latents_from=str(tmp_path / "ae"))
    latents = tfps.data.open(config, encoder=fake_encoder(tmp_path / "ae"))
    assert latents.info == builtin.DatasetInfo("digits:latents", (2, 2, 1), 9, None)
    test_images, _ = builtin.load_numpy("digits", "test")
    expected = test_images[:, ::4, ::4, :] // 2
    np.testing.assert_array_equal(np.stack(list(latents.load("test"))), expected)
    cached = tmp_path / "ae" / data_latents.LATENTS_DIR / "ckpt-7-test.npy"
    np.testing.assert_array_equal(np.load(cached), expected)
    assert latents.description["dimension_reduction"] == 16.0
    assert latents.description["autoencoder_checkpoint"] == str(tmp_path / "ae" / "ckpt-7")
    with pytest.raises(ValueError, match="pass its frozen encoder"):
        tfps.data.open(config)
    with pytest.raises(ValueError, match="set config.latents_from"):
        tfps.data.open(tiny("digits"), encoder=fake_encoder(tmp_path / "ae"))
    with pytest.raises(checks.DataError, match="arch 'pixelcnn' models images"):
        tfps.data.open(tiny(write_npz(tmp_path / "s.npz", train=images(30, (12,)))))


# --------------------------------------------------------------------------------- bad data


def _npz(tmp_path, **arrays):
    return lambda: write_npz(tmp_path / "bad.npz", **arrays)


def _with(array, index, value):
    array[index] = value
    return array


def _corrupt_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    return str(tmp_path / "bad.npz")


def _mixed_folder(tmp_path):
    folder = write_folder(tmp_path / "pics", n=20)
    Image.fromarray(np.zeros((9, 8), np.uint8), "L").save(os.path.join(folder, "zz.png"))
    return folder


def _corrupt_folder(tmp_path):
    folder = write_folder(tmp_path / "pics", n=20)
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG garbage")
    return folder


BAD = {
    "non-integer": (lambda t: _npz(t, train=images(20) + 0.5)(), {}, "train', image 0, pixel"),
    "negative": (
        lambda t: _npz(t, train=images(20), test=_with(images(5), (2, 1, 3), -1))(),
        {},
        "split 'test', image 2, pixel \\(1, 3, 0\\): value -1 is negative",
    ),
    "too large": (
        lambda t: _npz(t, train=images(20, high=16), validation=np.full((4, 8, 8), 16))(),
        {"num_categories": 16},
        "split 'validation', image 0, .* not below K = 16",
    ),
    "mixed sizes": (_mixed_folder, {}, "zz.png .*size 9x8x1, but img000.png is 8x8x1"),
    "empty split": (
        lambda t: _npz(t, train=images(20), validation=np.zeros((0, 8, 8), int))(),
        {},
        "split 'validation' is empty",
    ),
    "corrupt npz": (_corrupt_npz, {}, "bad.npz: cannot read the .npz file"),
    "corrupt image": (_corrupt_folder, {}, "broken.png: cannot read the image"),
    "missing array": (lambda t: _npz(t, images=images(20))(), {}, "no array 'train'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_is_one_error_before_the_logdir_exists(tmp_path, case):
    make, overrides, message = BAD[case]
    logdir = tmp_path / "run"
    with pytest.raises(checks.DataError, match=message):
        training.train(tiny(make(tmp_path), **overrides), str(logdir))
    assert not logdir.exists()


def test_bad_data_leaves_an_existing_logdir_unchanged(tmp_path):
    logdir = tmp_path / "run"
    logdir.mkdir()
    (logdir / "note.txt").write_text("mine")
    with pytest.raises(checks.DataError):
        training.train(tiny(_corrupt_npz(tmp_path)), str(logdir))
    assert os.listdir(logdir) == ["note.txt"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_categories": 5}, "num_categories is for your own data"),
        ({"bits": 3, "num_categories": 8, "dataset": "x.npz"}, "not both"),
        ({"binarize": 300, "dataset": "x.npz"}, "binarize must be in 1..255"),
        ({"dataset": "no/such/folder"}, "or your own data: 'tfds:NAME'"),
    ],
)
def test_config_checks_the_data_fields(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_lib.TrainConfig(**overrides).validate()


# ------------------------------------------------------------------------- through the launcher


def test_npz_run_resumes_without_flags_and_refuses_changed_data(tmp_path):
    path = write_npz(tmp_path / "d.npz", train=images(60))
    logdir = str(tmp_path / "run")
    result = launch_here(
        "launch.train", *TINY_FLAGS, f"--logdir={logdir}", f"--config.data.dataset={path}"
    )
    assert result.returncode == 0, result.stderr
    described = rundir.read_config(logdir)["dataset"]
    assert described["kind"] == "npz" and described["num_categories"] == 32
    assert described["split_sizes"] == {"train": 48, "validation": 6, "test": 6}

    resumed = launch_here("launch.train", f"--logdir={logdir}", "--config.training.steps=3")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 3

    write_npz(tmp_path / "d.npz", train=images(60, seed=1))
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(rundir.ConfigConflictError, match="dataset.fingerprint"):
        training.train(tiny(path, steps=4), logdir)
    assert (tmp_path / "run" / "config.json").read_text() == before


def test_folder_run_and_a_bad_file_through_the_launcher(tmp_path):
    folder = write_folder(tmp_path / "pics", n=30)
    logdir = tmp_path / "run"
    result = launch_here(
        "launch.train", *TINY_FLAGS, f"--logdir={logdir}", f"--config.data.dataset={folder}"
    )
    assert result.returncode == 0, result.stderr
    assert rundir.read_config(str(logdir))["dataset"]["kind"] == "folder"

    bad = _corrupt_npz(tmp_path)
    result = launch_here(
        "launch.train", *TINY_FLAGS, f"--logdir={tmp_path / 'bad'}", f"--config.data.dataset={bad}"
    )
    assert result.returncode != 0 and "cannot read the .npz file" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bad").exists()


def test_the_autoencoder_reads_the_same_sources(tmp_path):
    from tfps.train import autoencoder_training

    path = write_npz(tmp_path / "d.npz", train=images(40, high=256))
    config = config_lib.AutoencoderConfig(
        dataset=path, width=8, latent_channels=1, latent_categories=4, steps=2, batch_size=8,
        eval_batches=1, checkpoint_every=2, eval_every=2, log_every=1,
    )  # fmt: skip
    metrics = autoencoder_training.train_autoencoder(config, str(tmp_path / "ae"))
    assert metrics["step"] == 2 and metrics["latent_shape"] == [2, 2, 1]
    assert rundir.read_config(str(tmp_path / "ae"))["dataset"]["num_categories"] == 256
    # An ARM on its latents takes the autoencoder's data fields and encodes the .npz images.
    arm = training.train(
        config_lib.TrainConfig(
            num_resnets=1, filters=4, steps=2, batch_size=8, eval_batches=1, checkpoint_every=2,
            eval_every=2, log_every=1, latents_from=str(tmp_path / "ae"),
        ),
        str(tmp_path / "arm"),
    )  # fmt: skip
    assert arm["dataset"] == f"{path}:latents" and arm["step"] == 2
    assert rundir.read_config(str(tmp_path / "arm"))["train"]["dataset"] == path
    odd = write_npz(tmp_path / "odd.npz", train=images(40, (6, 6)))
    with pytest.raises(ValueError, match="divisible by 4"):
        autoencoder_training.train_autoencoder(dataclasses.replace(config, dataset=odd), "x")
