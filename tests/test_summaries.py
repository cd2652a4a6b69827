"""Tests for tfps/evaluation/pictures.py, tfps/evaluation/summaries.py and the launchers' --logdir:
the pictures show what the sampler recorded, the event files hold every tag with the right shapes
and ranges, TensorBoard serves them."""

import os
import shutil
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from launch import check_tensorboard
from tfps.evaluation import pictures, summaries
from tfps.models import pixelcnn
from tfps.sampling import predictive

from launchers import launch_here
from tiny_models import tiny_model


def _red(picture):
    """Share of red of each pixel of a mistake map: (R - G) / 255."""
    picture = np.asarray(picture, np.int64)
    return (picture[..., 0] - picture[..., 1]) / 255.0


def _tiles(picture, count, height, width, scale):
    """Undoes `pictures.grid(..., pad=1, scale)`: one pixel per image position,
    `[count, H, W, 3]`."""
    columns = int(np.ceil(np.sqrt(count)))
    tiles = []
    for k in range(count):
        r, c = divmod(k, columns)
        top, left = 1 + r * (height * scale + 1), 1 + c * (width * scale + 1)
        block = picture[top : top + height * scale, left : left + width * scale]
        tiles.append(block[scale // 2 :: scale, scale // 2 :: scale])
    return np.stack(tiles)


# ----------------------------------------------------------------------------------- pictures
def test_mistake_map_is_red_exactly_where_a_forecast_was_wrong():
    rng = np.random.default_rng(0)
    samples = rng.integers(0, 17, size=(4, 5, 6, 1))
    mistakes = rng.random(samples.shape) < 0.2
    picture = pictures.mistake_map(samples, mistakes, 17)
    assert picture.shape == (4, 5, 6, 3) and picture.dtype == np.uint8
    wrong = mistakes[..., 0]
    np.testing.assert_array_equal(picture[wrong], np.tile([255, 0, 0], (wrong.sum(), 1)))
    # Elsewhere the sample in grey, exactly as the sample grid draws it.
    np.testing.assert_array_equal(picture[~wrong], pictures.to_rgb(samples, 17)[~wrong])


def test_mistake_map_shades_red_by_the_number_of_wrong_channels():
    rng = np.random.default_rng(1)
    samples = rng.integers(0, 4, size=(3, 4, 4, 3))
    mistakes = rng.random(samples.shape) < 0.4
    picture = pictures.mistake_map(samples, mistakes, 4)
    count = mistakes.sum(axis=-1)
    assert set(np.unique(count)) == {0, 1, 2, 3}
    np.testing.assert_allclose(_red(picture), count / 3, atol=1.0 / 255)
    assert np.all((picture[..., 0] > picture[..., 1]) == (count > 0))
    grey = np.round(255 * samples.mean(-1) / 3).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(picture[..., channel][count == 0], grey[count == 0])
    # One wrong channel of a white pixel is a third red, three of a black one all red.
    white_one = pictures.mistake_map(
        np.full((1, 1, 1, 3), 3), np.eye(3, dtype=bool)[None, None, :1], 4
    )
    black_all = pictures.mistake_map(np.zeros((1, 1, 1, 3)), np.ones((1, 1, 1, 3), bool), 4)
    np.testing.assert_array_equal(white_one[0, 0, 0], [255, 170, 170])
    np.testing.assert_array_equal(black_all[0, 0, 0], [255, 0, 0])


def test_convergence_colours_follow_a_log_scale_and_rise_in_luminance():
    values = np.geomspace(1, 784, 50)
    positions = pictures.log_position(values, 1, 784)
    # Equal ratios, equal steps.
    np.testing.assert_allclose(positions, np.linspace(0, 1, 50), atol=1e-12)
    assert pictures.log_position(0.5, 1, 784) == 0 and pictures.log_position(1e4, 1, 784) == 1
    rgb = pictures.colorize_log(np.arange(1, 785), 1, 784).astype(np.float64)
    luminance = rgb @ [0.2126, 0.7152, 0.0722]
    # Rising, up to rounding to uint8 (one unit of red weighs 0.2126).
    assert np.all(np.diff(luminance) >= -0.25) and luminance[-1] - luminance[0] > 150
    anchors = pictures.colormap(np.linspace(0, 1, 9)).astype(np.float64) @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(anchors) > 10)
    # The log scale spends half the colours on the first sqrt(784) = 28 iterations.
    np.testing.assert_array_equal(pictures.colorize_log(28, 1, 784), pictures.colormap(0.5))


def test_convergence_average_is_over_examples_and_channels():
    calls = np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3)
    np.testing.assert_allclose(summaries.convergence_average(calls), calls.mean(axis=(0, 3)))
    np.testing.assert_allclose(summaries.convergence_average(calls[0]), calls[0].mean(axis=-1))


def test_convergence_figure_puts_both_maps_on_one_scale_with_a_colour_bar():
    baseline = summaries.convergence_average(summaries.ancestral_determined_at((8, 8, 1)))
    fast = np.minimum(baseline, 5.0)
    both, (vmin, vmax) = pictures.convergence_figure({"fpi": fast, "ancestral": baseline}, scale=4)
    alone, _ = pictures.convergence_figure({"fpi": fast}, scale=4)
    assert (vmin, vmax) == (1.0, 64.0)
    assert both.dtype == np.uint8 and both.ndim == 3 and both.shape[2] == 3
    assert both.shape[1] > alone.shape[1] + 32 and both.shape[0] == alone.shape[0]
    # The bar holds every colour of the map, from vmin's to vmax's.
    colours = {tuple(c) for c in both.reshape(-1, 3)}
    assert tuple(pictures.colormap(0.0)) in colours and tuple(pictures.colormap(1.0)) in colours


def test_forecast_accuracy_is_correct_over_made_forecasts():
    mistakes = np.zeros((2, 4, 4, 1), bool)
    mistakes[0, 0, :3] = True
    assert summaries.forecast_accuracy(mistakes, [16, 16]) == pytest.approx(1 - 3 / 32)
    assert summaries.forecast_accuracy(mistakes, [0, 0]) is None


# -------------------------------------------------------------------- with a sampler, in-process
@pytest.fixture(scope="module")
def sampler():
    return predictive.sampler_for_model(tiny_model((4, 4, 3), 3))


def test_ancestral_baseline_is_the_position_in_the_ordering(sampler):
    result = sampler.sample_from_seed(0, 2, "ancestral")
    expected = summaries.ancestral_determined_at(sampler.image_shape)
    np.testing.assert_array_equal(
        summaries.determined_at(result, "ancestral"),
        np.broadcast_to(expected, (2,) + sampler.image_shape),
    )
    assert expected[0, 0, 0] == 1 and expected[0, 0, 2] == 3 and expected[0, 1, 0] == 4


def test_predict_last_mistakes_are_drawn_where_the_value_changed(sampler):
    # `last` forecasts x_{i-1} for every variable from i on, so its forecast for x_j was wrong
    # exactly where x_j != x_{j-1} (x_{-1} = 0: the first call forecasts zeros).
    result = sampler.sample_from_seed(4, 6, "last")
    samples = result.samples.numpy()
    flat = samples.reshape(6, -1)
    changed = flat != np.concatenate([np.zeros((6, 1), flat.dtype), flat[:, :-1]], axis=1)
    changed = changed.reshape(samples.shape)
    assert changed.any() and not changed.all()
    picture = pictures.mistake_map(samples, result.forecast_mistakes.numpy(), 3)
    np.testing.assert_allclose(_red(picture), changed.mean(axis=-1), atol=1.0 / 255)


def test_inspect_reports_calls_accuracy_and_pictures(sampler):
    result = sampler.sample_from_seed(1, 5, "fpi")
    baseline = summaries.ancestral_determined_at(sampler.image_shape)
    found = summaries.inspect(
        result, "fpi", 3, seconds_per_sample=0.25, baseline=baseline, max_samples=4, scale=3
    )
    d = 48
    calls = result.arm_calls_per_example.numpy()
    assert found.scalars[summaries.ARM_CALLS_PERCENT] == pytest.approx(100 * calls.mean() / d)
    mistakes = result.forecast_mistakes.numpy()
    assert found.scalars[summaries.FORECAST_ACCURACY] == pytest.approx(1 - mistakes.sum() / (5 * d))
    assert found.scalars[summaries.SECONDS_PER_SAMPLE] == 0.25
    np.testing.assert_array_equal(found.histograms[summaries.ARM_CALLS_HISTOGRAM], calls)
    tiles = _tiles(found.pictures[summaries.MISTAKES], 4, 4, 4, 3)  # max_samples=4 of 5
    np.testing.assert_array_equal(
        tiles, pictures.mistake_map(result.samples.numpy()[:4], mistakes[:4], 3)
    )
    assert set(found.pictures) == {"samples", "forecast_mistakes", "convergence"}
    assert "Log colour scale" in found.descriptions["convergence"]
    assert "ancestral 2.0 to 47.0" in found.descriptions["convergence"]  # channel means of 1..48

    ancestral = summaries.inspect(sampler.sample_from_seed(1, 5, "ancestral"), "ancestral", 3)
    assert summaries.FORECAST_ACCURACY not in ancestral.scalars
    assert summaries.MISTAKES not in ancestral.pictures
    assert ancestral.scalars[summaries.ARM_CALLS_PERCENT] == 100


def test_inspect_draws_any_channel_count():
    # 4 latent channels (Figure 5 of Wiggers & Hoogeboom 2020): samples and mistakes in grey from
    # the channel mean.
    keras.utils.set_random_seed(0)
    latent = predictive.sampler_for_model(
        pixelcnn.PixelCNN((2, 2, 4), 5, num_resnets=1, filters=4, dropout_rate=0.0)
    )
    result = latent.sample_from_seed(0, 2, "fpi")
    found = summaries.inspect(result, "fpi", 5, scale=1)
    tiles = _tiles(found.pictures["samples"], 2, 2, 2, 1)
    mean = result.samples.numpy().mean(axis=-1)
    np.testing.assert_array_equal(tiles[..., 0], np.round(255 * mean / 4).astype(np.uint8))
    assert np.all(tiles[..., 0] == tiles[..., 2])


def test_concat_results_joins_seeds(sampler):
    parts = [sampler.sample_from_seed(s, 2, "fpi") for s in (0, 1)]
    joined = summaries.concat_results(parts)
    assert joined.samples.shape == (4, 4, 4, 3)
    assert joined.arm_calls == int(parts[0].arm_calls) + int(parts[1].arm_calls)
    np.testing.assert_array_equal(joined.forecasts_checked[2:], parts[1].forecasts_checked)


# ----------------------------------------------------------------- the launcher and TensorBoard
@pytest.fixture(scope="module")
def sampled_run(tiny_run, tmp_path_factory):
    """A copy of the tiny training run, sampled with `zeros` by launch/sample.py --logdir=<run>."""
    run = str(tmp_path_factory.mktemp("summaries") / "run")
    shutil.copytree(tiny_run[0], run)
    output = os.path.join(run, "samples")
    proc = launch_here(
        "launch.sample",
        f"--model={run}",
        "--method=zeros",
        "--num_samples=6",
        "--batch_size=4",
        "--seed=2",
        f"--logdir={run}",
        f"--output_dir={output}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "forecast accuracy" in proc.stdout and "sample_zeros" in proc.stdout
    return run, output


def _read_events(run_directory):
    accumulator = event_accumulator.EventAccumulator(
        run_directory, size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator


def _only(accumulator, tag):
    events = accumulator.Tensors(tag)
    assert len(events) == 1 and events[0].step == 20  # the tiny run's training step
    return tf.make_ndarray(events[0].tensor_proto)


def test_event_files_hold_every_tag_with_its_shape_and_range(sampled_run):
    run, output = sampled_run
    samples = np.load(os.path.join(output, "samples_zeros.npy"))
    events = _read_events(os.path.join(run, "sample_zeros"))
    assert set(events.Tags()["tensors"]) == {
        "arm_calls_percent",
        "forecast_accuracy",
        "seconds_per_sample",
        "samples",
        "forecast_mistakes",
        "convergence",
        "arm_calls_per_example",
    }

    # Forecasting zeros, the forecast was wrong exactly at the non-zero values, and each call ends
    # at a mistake except a last one when the sample does not end in one.
    d = 64
    nonzero = (samples != 0).reshape(6, d)
    calls = nonzero.sum(axis=1) + ~nonzero[:, -1]
    assert _only(events, "arm_calls_percent") == pytest.approx(100 * calls.mean() / d, rel=1e-6)
    accuracy = _only(events, "forecast_accuracy")
    assert 0 <= accuracy <= 1 and accuracy == pytest.approx(1 - nonzero.sum() / (6 * d), rel=1e-6)
    assert _only(events, "seconds_per_sample") > 0
    histogram = _only(events, "arm_calls_per_example")  # [buckets, (left, right, count)]
    assert histogram.ndim == 2 and histogram.shape[1] == 3 and histogram[:, 2].sum() == 6
    assert histogram[0, 0] <= calls.min() and histogram[-1, 1] >= calls.max()

    scale = pictures.auto_scale(8)
    for tag in ("samples", "forecast_mistakes", "convergence"):
        width, height, png = _only(events, tag)  # the image plugin's [width, height, png...]
        picture = tf.io.decode_png(png).numpy()
        assert picture.shape == (int(height), int(width), 3)
        with open(os.path.join(output, f"{tag}_zeros.png"), "rb") as f:
            assert f.read() == png  # the PNG file next to the samples is the same picture
    samples_picture = tf.io.decode_png(_only(events, "samples")[2]).numpy()
    np.testing.assert_array_equal(
        _tiles(samples_picture, 6, 8, 8, scale), pictures.to_rgb(samples, 17)
    )
    mistakes_picture = tf.io.decode_png(_only(events, "forecast_mistakes")[2]).numpy()
    red = _red(_tiles(mistakes_picture, 6, 8, 8, scale))
    np.testing.assert_array_equal(red == 1.0, samples[..., 0] != 0)
    np.testing.assert_array_equal(red == 0.0, samples[..., 0] == 0)
    description = events.SummaryMetadata("convergence").summary_description
    assert "zeros 1.0 to" in description and "ancestral 1.0 to 64.0" in description


def test_tensorboard_serves_training_and_sampling_side_by_side(sampled_run):
    run, output = sampled_run
    expected = {
        "scalars": ["bpd", "arm_calls_percent", "forecast_accuracy", "seconds_per_sample"],
        "images": ["samples", "forecast_mistakes", "convergence"],
        "histograms": ["arm_calls_per_example"],
    }
    found = check_tensorboard.check(run, expected, timeout=60, log=None)
    assert not any(found["missing"].values()), found
    scalars = found["tags"]["scalars"]
    assert {"train", "validation", "sample_zeros"} <= set(scalars)
    assert "bpd" in scalars["validation"] and "forecast_accuracy" in scalars["sample_zeros"]
    for tag in expected["images"]:
        with open(os.path.join(output, f"{tag}_zeros.png"), "rb") as f:
            assert found["images"][("sample_zeros", tag)] == f.read()
    with pytest.raises(ProcessLookupError):  # the server it started is gone
        os.kill(found["pid"], 0)


def test_tensorboard_check_retries_when_its_port_was_taken(sampled_run, tmp_path):
    """A free port can be taken between choosing it and TensorBoard binding it (the next bind(0)
    of another process may receive it): the check starts TensorBoard again on another port."""
    marker = tmp_path / "failed_once"
    wrapper = tmp_path / "tensorboard_once_refused.py"
    wrapper.write_text(
        "import os, sys\n"
        f"if not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    sys.stderr.write('TensorBoard could not bind to port 1, it was already in use')\n"
        "    sys.exit(255)\n"
        "from tensorboard import main\n"
        "sys.argv[0] = 'tensorboard'\n"
        "main.run_main()\n"
    )
    run, _ = sampled_run
    found = check_tensorboard.check(
        run, {"scalars": ["bpd"]}, timeout=60, tensorboard=[sys.executable, str(wrapper)], log=None
    )
    assert marker.exists() and not any(found["missing"].values())
