"""Tests of tfps.data.sources for sequences: an .npz of integer sequences `[N, L]` is the user's
data for the sequence ARMs (event shape `(L,)`).

K, the carved splits and every bad-data error work as for images, naming the file, split,
sequence and position, before the run directory is touched; so does a model that does not model
sequences. A tiny causal Conv1D run trains from the file through launch/train.py, resumes
without flags, and samples, serves and benchmarks from its config.json: every method returns the
ancestral sample of the same noise (`oracles.ancestral_reference`).
"""

import dataclasses
import json

import numpy as np
import pytest

import tfps.data
from launch import benchmark_run, sample_run
from tfps.data import checks, sources
from tfps.sampling import noise
from tfps.serving import export, exported_sampler, loading
from tfps.train import config as config_lib
from tfps.train import rundir, training

from launchers import launch_here
from oracles import ancestral_reference

LENGTH, HIGH = 12, 5
TINY = dict(
    arch="conv1d", filters=8, num_layers=2, kernel_size=3, dropout_rate=0.0, steps=2,
    batch_size=8, eval_batches=1, checkpoint_every=2, eval_every=2, log_every=1,
)  # fmt: skip
TINY_FLAGS = [
    "--config=configs/conv1d_digits.py", "--config.model.filters=8",
    "--config.model.num_layers=2", "--config.model.kernel_size=3", "--config.forecast.steps=2",
    "--config.training.steps=2", "--config.training.batch_size=8",
    "--config.training.eval_batches=1", "--config.training.log_every=1",
    "--config.training.eval_every=2", "--config.training.checkpoint_every=2",
]  # fmt: skip


def tiny(dataset, **overrides):
    return config_lib.TrainConfig(dataset=str(dataset), **{**TINY, **overrides})


def sequences(n, length=LENGTH, high=HIGH, seed=0):
    return np.random.default_rng(seed).integers(0, high, (n, length))


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _with(array, index, value):
    array = array.astype(np.result_type(array, type(value)))
    array[index] = value
    return array


# ------------------------------------------------------------------------- opening the data


def test_npz_sequences_open_with_event_shape_l_and_carved_splits(tmp_path):
    train = sequences(60)
    path = write_npz(tmp_path / "s.npz", train=train)
    opened = tfps.data.open(tiny(path))
    assert opened.info.event_shape == (LENGTH,) and opened.info.num_variables == LENGTH
    assert opened.info.num_categories == 8 and opened.info.bits == 3  # largest value 4 < 2**3
    assert opened.description["split_sizes"] == {"train": 48, "validation": 6, "test": 6}
    parts = [np.stack(list(opened.load(s).as_numpy_iterator())) for s in sources.ARRAY_SPLITS]
    assert all(part.shape[1:] == (LENGTH,) and part.dtype == np.int32 for part in parts)
    assert sorted(map(bytes, np.concatenate(parts))) == sorted(
        map(bytes, train.astype(np.int32))
    )  # the splits partition train
    for overrides, k in [({"num_categories": 5}, 5), ({"bits": 4}, 16)]:
        assert tfps.data.open(tiny(path, **overrides)).info.num_categories == k


def test_npz_sequences_with_their_own_splits(tmp_path):
    path = write_npz(
        tmp_path / "s.npz", train=sequences(20), validation=sequences(3), test=sequences(2)
    )
    opened = tfps.data.open(tiny(path, num_categories=HIGH, arch="transformer"))
    assert opened.description["split_sizes"] == {"train": 20, "validation": 3, "test": 2}
    assert opened.info.event_shape == (LENGTH,) and opened.info.num_categories == HIGH


# --------------------------------------------------------------------------------- bad data

BAD = {  # case: (arrays, config overrides, the one error)
    "non-integer": (
        {"train": _with(sequences(20), (4, 7), 1.5)},
        {},
        r"split 'train', sequence 4, position 7: value .*1\.5.* is not an integer",
    ),
    "negative": (
        {"train": sequences(20), "test": _with(sequences(5), (2, 3), -1)},
        {},
        "split 'test', sequence 2, position 3: value -1 is negative; values must be >= 0",
    ),
    "too large": (
        {"train": sequences(20), "validation": _with(sequences(4), (1, 0), HIGH)},
        {"num_categories": HIGH},
        f"split 'validation', sequence 1, position 0: value {HIGH} is not below K = {HIGH}",
    ),
    "empty split": (
        {"train": sequences(20), "validation": np.zeros((0, LENGTH), int)},
        {},
        "split 'validation' is empty",
    ),
    "mixed lengths": (
        {"train": sequences(20), "test": sequences(5, LENGTH + 1)},
        {},
        r"different sequence lengths \{'train': \(12,\), 'test': \(13,\)\}",
    ),
    "mixed layouts": (
        {"train": sequences(20), "test": sequences(5, LENGTH)[:, :, None, None]},
        {},
        "different layouts .*do not mix",
    ),
    "rank 1": (
        {"train": sequences(1)[0]},
        {},
        r"array 'train' has shape \(12,\); .* or sequences \[N, L\]",
    ),
    "pixelcnn": (
        {"train": sequences(20)},
        {"arch": "pixelcnn"},
        r"arch 'pixelcnn' models images \(H, W, C\), but .*s.npz has events of shape \(12,\); "
        "choose another model arch: 'made', 'conv1d', 'transformer'",
    ),
    "gated pixelcnn": (
        {"train": sequences(20)},
        {"arch": "gated_pixelcnn"},
        "arch 'gated_pixelcnn' models images",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sequence_data_is_one_error_before_the_logdir_changes(tmp_path, case):
    arrays, overrides, message = BAD[case]
    path = write_npz(tmp_path / "s.npz", **arrays)
    missing, existing = tmp_path / "new_run", tmp_path / "old_run"
    existing.mkdir()
    (existing / "note.txt").write_text("mine")
    for logdir in (missing, existing):
        with pytest.raises(checks.DataError, match=message):
            training.train(tiny(path, **overrides), str(logdir))
    assert not missing.exists() and [p.name for p in existing.iterdir()] == ["note.txt"]


def test_the_autoencoder_refuses_sequences_before_writing(tmp_path):
    from tfps.train import autoencoder_training

    path = write_npz(tmp_path / "s.npz", train=sequences(20))
    config = config_lib.AutoencoderConfig(dataset=path, width=8, latent_channels=1, steps=1)
    with pytest.raises(checks.DataError, match=r"autoencoder models images .* shape \(12,\)"):
        autoencoder_training.train_autoencoder(config, str(tmp_path / "ae"))
    assert not (tmp_path / "ae").exists()


def test_a_pixelcnn_preset_on_sequences_is_one_launcher_error(tmp_path):
    path = write_npz(tmp_path / "s.npz", train=sequences(20))
    result = launch_here(
        "launch.train", "--config=configs/digits.py", f"--config.data.dataset={path}",
        f"--logdir={tmp_path / 'run'}",
    )  # fmt: skip
    assert result.returncode != 0 and "arch 'pixelcnn' models images" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------- through the launcher


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory):
    """A conv1d run with T = 2 learned forecasting heads, trained from an .npz of sequences by
    launch/train.py, then resumed from its config.json alone: `(logdir, npz path)`."""
    root = tmp_path_factory.mktemp("sequence_run")
    path = write_npz(root / "s.npz", train=sequences(60), test=sequences(6, seed=1))
    logdir = str(root / "run")
    result = launch_here(
        "launch.train", *TINY_FLAGS, f"--logdir={logdir}", f"--config.data.dataset={path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = launch_here("launch.train", f"--logdir={logdir}", "--config.training.steps=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return logdir, path


def test_a_sequence_run_records_its_data_and_resumes_without_flags(sequence_run):
    logdir, path = sequence_run
    config = rundir.read_config(logdir)
    assert config["dataset"]["image_shape"] == [LENGTH] and config["dataset"]["kind"] == "npz"
    assert config["dataset"]["num_categories"] == 8 and config["dataset"]["source"] == path
    assert config["dataset"]["split_sizes"] == {"train": 54, "validation": 6, "test": 6}
    assert config["model"]["arch"] == "conv1d" and config["model"]["event_shape"] == [LENGTH]
    with open(f"{logdir}/metrics.json") as f:
        assert json.load(f)["step"] == 3


def test_every_method_returns_the_ancestral_sample_from_the_run_and_its_export(
    sequence_run, tmp_path
):
    logdir, _ = sequence_run
    model, _ = training.load_trained(logdir)
    sampler = loading.load(logdir).sampler
    assert sampler.event_shape == (LENGTH,) and "learned" in sampler.methods
    eps = noise.gumbel_noise((3, LENGTH, 8), seed=4)
    expected = ancestral_reference(model, eps)
    seeded = sampler.sample_from_seed(5, 3, "ancestral").samples.numpy()
    for method in sampler.methods:
        result = sampler.sample(eps, method).samples.numpy()
        np.testing.assert_array_equal(result, expected, err_msg=method)
        by_seed = sampler.sample_from_seed(5, 3, method).samples.numpy()
        np.testing.assert_array_equal(by_seed, seeded, err_msg=method)

    path = export.export_trained(logdir, str(tmp_path / "exported"))  # named after s.npz
    assert path == str(tmp_path / "exported" / "s" / "1")
    served = exported_sampler.load_exported(path)
    assert served.metadata["event_shape"] == [LENGTH]
    for method in served.methods:
        result = served.sample(eps, method).samples.numpy()
        np.testing.assert_array_equal(result, expected, err_msg=method)


def test_a_sequence_run_samples_to_files_and_is_benchmarked(sequence_run, tmp_path):
    logdir, _ = sequence_run
    loaded = loading.load(logdir)
    sample_run.sample_to_files(loaded, "fpi", 3, 2, 0, str(tmp_path), log=lambda _: None)
    samples = np.load(tmp_path / "samples_fpi.npy")
    assert samples.shape == (3, LENGTH) and 0 <= samples.min() and samples.max() < 8
    options = benchmark_run.Options(
        methods=("ancestral", "fpi"), batch_sizes=(1,), num_seeds=1, tfp_peer=False,
        scheduled_samples=0, output=str(tmp_path / "bench"), picture_samples=2,
    )  # fmt: skip
    table = benchmark_run.run_benchmark(loaded, logdir, options, log=lambda _: None)
    assert f"d = {LENGTH}, K = 8, conv1d" in table and "| fpi |" in table


def test_the_recorded_config_reopens_the_same_data(sequence_run):
    logdir, path = sequence_run
    train = config_lib.TrainConfig.from_dict(rundir.read_config(logdir)["train"])
    assert train.dataset == path and train.arch == "conv1d"
    opened = tfps.data.open(dataclasses.replace(train, steps=1))
    assert opened.info.event_shape == (LENGTH,)


@pytest.mark.parametrize(
    "dataset, name",
    [
        ({"name": "data/tunes.npz", "kind": "npz"}, "tunes"),
        ({"name": "/data/pics/", "kind": "folder"}, "pics"),
        ({"name": "imagenet_resized/32x32"}, "imagenet_resized_32x32"),
        ({"name": "tfds:mnist"}, "tfds_mnist"),
        ({"name": "digits"}, "digits"),
        (None, "model"),
    ],
)
def test_an_export_is_named_after_the_data(dataset, name):
    assert export.default_name(dataset) == name


def test_built_in_data_is_checked_against_the_arch_ranks_too():
    with pytest.raises(ValueError, match="arch 'gated_pixelcnn' models images .* shape \\(64,\\)"):
        config_lib.TrainConfig(dataset="text_python", arch="gated_pixelcnn").validate()
    assert config_lib.TrainConfig(dataset="digits", arch="conv1d").validate().arch == "conv1d"
