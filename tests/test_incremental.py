"""Tests for tfps/sampling/incremental.py: row bands give a full call's outputs, incremental
sampling and `ancestral_cached` are exact.

Exactness the strong way: for random noise every method, with incremental calls, returns the
sample of the independent eager ancestral loop (`oracles.ancestral_reference`), and the cache left
after sampling equals a full recomputation on the final sample.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from tfps.models import gated_pixelcnn, made, transformer
from tfps.sampling import forecasters, incremental, loops, predictive
from tfps.sampling import noise as noise_lib

import oracles
from tiny_models import tiny_model, trained_model

# Band outputs may differ from the full call's by float rounding only (convolutions over fewer
# rows); on these tiny models they are equal to within a few ulps.
ATOL = 1e-5

# The tiniest models that cover the cases: one scale, and three scales at an odd height with
# C = 3 (the band starts align to 4 rows; the downsampled maps have 4 and 2 rows).
BAND_CASES = {
    "one_scale_4x3x1": lambda: tiny_model((4, 3, 1), 2, filters=4),
    "three_scales_7x4x3": lambda: tiny_model((7, 4, 3), 3, filters=4, num_scales=3),
}


@pytest.fixture(scope="module", params=sorted(BAND_CASES))
def band_model(request):
    return BAND_CASES[request.param]()


def _images(model, batch, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, model.num_categories, (batch,) + model.image_shape).astype(np.int32)


@pytest.mark.parametrize("window", [None, 4])
def test_a_window_call_gives_the_full_call_on_the_rows_it_makes_exact(band_model, window):
    arm = incremental.WindowArm(band_model, window and incremental.window_rows(band_model, window))
    height, width, channels = band_model.image_shape
    row_size = width * channels  # the update takes flat positions: row r starts at r * row_size
    x0 = _images(band_model, 2, 0)
    logits, h, cache = arm.initial(tf.constant(x0))
    full_logits, full_h = band_model(x0)
    np.testing.assert_allclose(logits, full_logits, atol=ATOL)
    # Traced once, as the sampler's loop calls them (eager calls cost ~0.5 s each on 3 scales).
    window_call, full_call = tf.function(arm.update), tf.function(lambda x: band_model(x))
    for row in range(height + 1):
        x1 = x0.copy()
        x1[1, row:] = _images(band_model, 1, row + 1)[0, row:]  # example 1 changes from `row` on
        for needed in range(row, height):  # the sampler needs the rows up to `needed` exact
            changed = tf.constant([band_model.num_variables, row * row_size])
            needed_at = tf.constant([needed * row_size] * 2)
            update = window_call(tf.constant(x1), changed, needed_at, cache)
            exact = arm.valid_rows(update[2]).numpy()
            assert exact[0] == height and needed < exact[1] <= height, (row, needed, exact)
            full_logits, full_h = full_call(tf.constant(x1))
            np.testing.assert_allclose(
                update[0][1, : exact[1]], full_logits[1, : exact[1]], atol=ATOL
            )
            np.testing.assert_allclose(update[1][1, : exact[1]], full_h[1, : exact[1]], atol=ATOL)
            np.testing.assert_allclose(update[0][0], full_logits[0], atol=ATOL)


def test_a_window_that_starts_too_low_is_wrong_so_the_test_above_can_fail():
    model = tiny_model((5, 3, 1), 2, filters=4)
    arm = incremental.WindowArm(model)
    x0 = _images(model, 1, 0)
    _, _, cache = arm.initial(tf.constant(x0))
    x1 = 1 - x0
    # Told: changed from row 3 (position 9) on, row 4 needed; truly changed at 0.
    logits, _, cache = arm.update(tf.constant(x1), tf.constant([9]), tf.constant([12]), cache)
    assert arm.valid_rows(cache).numpy().tolist() == [5]
    full_logits, _ = model(x1)
    assert np.abs(logits.numpy()[:, 3:] - full_logits.numpy()[:, 3:]).max() > 1e-3


def test_the_rows_a_call_leaves_stale_repeat_its_last_exact_row(band_model):
    arm = incremental.WindowArm(band_model)  # the smallest window: a call leaves rows stale
    height = band_model.image_shape[0]
    x0, x1 = _images(band_model, 2, 0), _images(band_model, 2, 1)
    x1[0] = x0[0]
    _, _, cache = arm.initial(tf.constant(x0))
    # Example 0 is unchanged (exact everywhere); example 1 changed from row 0 and needs row 0.
    changed = tf.constant([band_model.num_variables, 0])
    logits, _, cache = arm.update(tf.constant(x1), changed, tf.constant([0, 0]), cache)
    valid = arm.valid_rows(cache).numpy()
    assert valid[0] == height and 0 < valid[1] < height, valid
    full_logits, _ = band_model(x1)
    np.testing.assert_allclose(logits[1, : valid[1]], full_logits[1, : valid[1]], atol=ATOL)
    last = logits.numpy()[1, valid[1] - 1]
    for row in range(valid[1], height):
        np.testing.assert_array_equal(logits.numpy()[1, row], last)
    np.testing.assert_allclose(logits[0], full_logits[0], atol=ATOL)


def test_the_first_call_computes_windows_from_empty_caches(band_model):
    arm = incremental.WindowArm(band_model)  # the smallest window
    height, width, channels = band_model.image_shape
    x = tf.constant(_images(band_model, 2, 0))
    full_logits, full_h = band_model(x)
    every_row = tf.constant([0, 0])  # changed from row 0 on, and the sampler needs row 0
    logits, h, cache = arm.update(x, every_row, every_row, arm.empty_cache(2))
    assert arm.valid_rows(cache).numpy().tolist() == [arm.window] * 2
    np.testing.assert_allclose(logits[:, : arm.window], full_logits[:, : arm.window], atol=ATOL)
    np.testing.assert_allclose(h[:, : arm.window], full_h[:, : arm.window], atol=ATOL)
    # The windows below read the rows above from the caches the first one wrote.
    unchanged = tf.constant([band_model.num_variables] * 2)
    last_row = tf.constant([(height - 1) * width * channels] * 2)
    logits, h, cache = arm.update(x, unchanged, last_row, cache)
    assert arm.valid_rows(cache).numpy().tolist() == [height] * 2
    np.testing.assert_allclose(logits, full_logits, atol=ATOL)
    np.testing.assert_allclose(h, full_h, atol=ATOL)
    full_cache = arm.initial(x)[2]  # a full call, every row exact
    assert arm.valid_rows(full_cache).numpy().tolist() == [height] * 2
    for cached, full in zip(cache[:-1], full_cache[:-1]):  # the image's rows of each map
        rows = -(-height // (arm.padded_height // (full.shape[1] - 1)))
        np.testing.assert_allclose(cached[:, : rows + 1], full[:, : rows + 1], atol=ATOL)


def test_a_call_computes_on_past_its_window_while_every_checked_forecast_held(band_model):
    arm = incremental.WindowArm(band_model)  # the smallest window
    height, width, channels = band_model.image_shape
    window = arm.window
    x0, x1 = _images(band_model, 1, 0), _images(band_model, 1, 1)
    _, _, cache = arm.initial(tf.constant(x0))
    full_logits, full_h = band_model(x1)
    # Noise that makes every output equal x1 (each forecast holds), except at `wrong`.
    k = band_model.num_categories
    noise = 100.0 * (2 * np.eye(k, dtype=np.float32)[x1] - 1)
    start = (tf.constant([0]), tf.constant([0]))  # x1 differs from row 0, which is needed

    def valid_after(wrong=None, checked=True):
        flipped = noise.copy()
        if wrong is not None:
            flipped[(0,) + wrong] *= -1
        mask = np.full(x1.shape, checked)
        logits, h, new_cache = arm.update(
            tf.constant(x1), *start, cache, check=(tf.constant(flipped), tf.constant(mask))
        )
        valid = int(arm.valid_rows(new_cache)[0])
        np.testing.assert_allclose(logits[:, :valid], full_logits[:, :valid], atol=ATOL)
        np.testing.assert_allclose(h[:, :valid], full_h[:, :valid], atol=ATOL)
        return valid

    without = arm.update(tf.constant(x1), *start, cache)[2]
    assert int(arm.valid_rows(without)[0]) == window
    assert valid_after() == height
    for row in range(height):
        expected = min(height, (row // window + 1) * window)
        assert valid_after((row, width - 1, channels - 1)) == expected, row
    assert valid_after((0, 0, 0), checked=False) == height  # unchecked forecasts do not count


def test_ancestral_windows_give_the_full_call_up_to_the_needed_row(band_model):
    arm = incremental.WindowArm(band_model)
    height, width, channels = band_model.image_shape
    x0 = _images(band_model, 2, 0)
    _, _, cache = arm.initial(tf.constant(x0))
    x = x0
    for row in range(height):  # as ancestral sampling: change a row, then need it
        x = x.copy()
        x[:, row] = _images(band_model, 2, row + 7)[:, row]
        changed = tf.constant([row, row]) * width * channels  # the row's first position
        logits, h, cache = arm.update(tf.constant(x), changed, changed, cache)
        full_logits, full_h = band_model(x)
        np.testing.assert_allclose(logits[:, : row + 1], full_logits[:, : row + 1], atol=ATOL)
        np.testing.assert_allclose(h[:, : row + 1], full_h[:, : row + 1], atol=ATOL)


def test_windows_are_aligned_to_the_coarsest_scale():
    three_scales = tiny_model((9, 4, 1), 2, filters=4, num_scales=3)
    assert incremental.window_rows(three_scales, 1) == 4
    assert incremental.window_rows(three_scales, 5) == 8
    assert incremental.window_rows(three_scales, 30) == 12  # the height, rounded up
    assert incremental.window_rows(tiny_model((28, 2, 1), 2, filters=4), True) == (
        incremental.DEFAULT_WINDOW_ROWS
    )
    with pytest.raises(ValueError, match="at least one row"):
        incremental.window_rows(three_scales, 0)
    with pytest.raises(ValueError, match="window must be a multiple of 4"):
        incremental.WindowArm(three_scales, window=2)


SAMPLING_CASES = {
    "one_scale_4x3x1": lambda: trained_model((4, 3, 1), 2, steps=10),
    # One model for every test of three scales below: their samplers of the smallest window share
    # its traced loops (`_sampler`).
    "three_scales_5x4x3": functools.cache(
        lambda: tiny_model((5, 4, 3), 3, filters=4, num_scales=3)
    ),
}


# Models hash by identity; `typed`: the window True (the whole image) is not the window 1.
@functools.lru_cache(maxsize=None, typed=True)
def _sampler(model, window):
    """`predictive.sampler_for_model(model, incremental=window)`, one per model and window in this
    module (each method's loop is traced once for every test that samples the model)."""
    return predictive.sampler_for_model(model, incremental=window)


@pytest.fixture(scope="module", params=sorted(SAMPLING_CASES))
def sampling_model(request):
    return SAMPLING_CASES[request.param]()


# The methods the 3-scale model runs: the windows, the cache and acceptance are one loop for
# every method (`tfps.sampling.loops`), which differ in their forecaster only; the one-scale
# model runs every method. Each method of the 3-scale model traces its loop anew (~4 s each):
# the plain and cached ancestral loops and fpi (a forecasting loop; zeros and last differ from it
# in the forecaster only).
THREE_SCALE_METHODS = ("ancestral", "ancestral_cached", "fpi")


# True: the default window, the whole of these images; 1: the smallest window (1 row on one
# scale, 4 on three), so acceptance stops at the rows a call left stale. Three scales in the
# smallest window only: the whole-image window is the plain call's graph (one scale checks it).
@pytest.mark.parametrize("window", [True, 1], ids=["whole_image", "smallest_window"])
def test_every_method_with_incremental_calls_is_the_ancestral_sample(sampling_model, window):
    model = sampling_model
    if window is True and model.num_scales > 1:
        pytest.skip("three scales: the smallest window (the hard case) only")
    sampler = _sampler(model, window)
    assert sampler.incremental
    assert sampler.incremental_rows == incremental.window_rows(model, window)
    assert set(THREE_SCALE_METHODS) <= set(sampler.all_methods)
    noise = noise_lib.gumbel_noise((3,) + model.image_shape + (model.num_categories,), 2)
    reference = oracles.ancestral_reference(model, noise)
    calls = {}
    methods = THREE_SCALE_METHODS if model.num_scales > 1 else sampler.all_methods
    for method in methods:
        result = sampler.sample(noise, method)
        np.testing.assert_array_equal(result.samples.numpy(), reference, err_msg=method)
        calls[method] = int(result.arm_calls)
    for method in ("ancestral_cached", "fpi"):  # the two incremental loops, scheduled
        scheduled = sampler.sample_scheduled(noise, method, slots=2)
        np.testing.assert_array_equal(scheduled.samples.numpy(), reference, err_msg=method)
    assert calls["ancestral_cached"] == calls["ancestral"] == model.num_variables
    if window is True:  # windows over the whole image: the calls of the plain loop
        plain = predictive.sampler_for_model(model).sample(noise, "fpi")
        assert int(plain.arm_calls) == calls["fpi"]


def test_incremental_calls_compiled_with_xla_are_exact():
    """The XLA-compiled loops (BUILD_NOTES: the configuration where windows pay most) with the
    smallest window of three scales: bit-equal to the eager ancestral reference."""
    model = SAMPLING_CASES["three_scales_5x4x3"]()
    sampler = predictive.sampler_for_model(model, incremental=1, jit_compile=True)
    noise = noise_lib.gumbel_noise((2,) + model.image_shape + (model.num_categories,), 5)
    reference = oracles.ancestral_reference(model, noise)
    result = sampler.sample(noise, "fpi")  # `ancestral_cached` runs the same windows
    np.testing.assert_array_equal(result.samples.numpy(), reference)
    assert int(result.arm_calls) < model.num_variables


def test_incremental_calls_keep_the_evidence_and_sample_the_rest_exactly():
    model = SAMPLING_CASES["three_scales_5x4x3"]()
    sampler = _sampler(model, 1)  # windows of 4 of the 5 rows
    rng = np.random.default_rng(0)
    evidence = rng.integers(0, 3, size=(3, 5, 4, 3)).astype(np.int32)
    mask = rng.random((3, 5, 4, 3)) < 0.3
    mask[0, :4] = True  # a whole observed row group: ancestral_cached must compute several
    noise = noise_lib.gumbel_noise((3, 5, 4, 3, 3), 21)
    reference = oracles.ancestral_reference(model, noise, evidence, mask)
    for method in ("ancestral_cached", "fpi"):
        result = sampler.sample(noise, method, evidence, mask)
        np.testing.assert_array_equal(result.samples, reference, err_msg=method)
    scheduled = sampler.sample_scheduled(noise, "fpi", 2, evidence, mask)
    np.testing.assert_array_equal(scheduled.samples, reference)


def test_the_cache_after_sampling_equals_a_full_recomputation_of_the_last_input():
    model = tiny_model((5, 4, 1), 2, filters=4, num_scales=3)
    arm = incremental.WindowArm(model)
    loop = loops.ArmLoop(predictive.arm_from_model(model), model.image_shape, arm)
    noise = noise_lib.gumbel_noise((2, 5, 4, 1, 2), 4)
    observed = tf.zeros((2, 20), tf.bool)
    evidence = tf.zeros((2, 20), tf.int32)
    state = loop.fresh_state(noise, evidence, observed)
    for _ in range(model.num_variables):  # ancestral: the last call makes the last row exact
        state = loop.step(state, forecasters.forecast_zeros, True, noise, evidence, observed)
    assert arm.valid_rows(state.arm_cache).numpy().tolist() == [5, 5]
    recomputed = arm.initial(tf.reshape(state.arm_input, (2, 5, 4, 1)))[2]
    assert len(recomputed) == len(state.arm_cache)
    for cached, full in zip(state.arm_cache[:-1], recomputed[:-1]):
        scale = arm.padded_height // (full.shape[1] - 1)  # padded layout: row r at index r + 1
        rows = -(-5 // scale)
        np.testing.assert_allclose(cached[:, 1 : rows + 1], full[:, 1 : rows + 1], atol=ATOL)


@pytest.mark.parametrize(
    "build",
    [
        lambda: tiny_model((4, 3, 1), 2, filters=4),
        lambda: transformer.Transformer((4, 3, 1), 2, model_dim=8, num_layers=1, num_heads=2),
    ],
    ids=["pixelcnn", "transformer"],
)
def test_each_cached_call_computes_the_variable_it_accepts_also_in_a_refilled_slot(build):
    """The scheduled loop gives a fresh example the slot and the cache of the last one: every
    call of `ancestral_cached` must compute the logits of the variable it accepts, the first free
    one from n on, also when the first rows are observed (they are computed in the same call)."""
    model = build()
    loop = loops.ArmLoop(
        predictive.arm_from_model(model), (4, 3, 1), incremental.cached_ancestral_arm(model)
    )
    d = 12
    noise = noise_lib.gumbel_noise((2, 4, 3, 1, 2), 3)
    evidence = tf.constant(np.random.default_rng(0).integers(0, 2, (2, d)), tf.int32)
    observed = np.zeros((2, d), bool)
    observed[1, :7] = True  # the second sample's first rows

    def sample(state, row):
        rows = (noise[row : row + 1], evidence[row : row + 1], tf.constant(observed[row : row + 1]))
        while int(state.num_valid[0]) < d:
            position = int(state.num_valid[0]) + int(np.argmin(observed[row, state.num_valid[0] :]))
            state = loop.step(state, forecasters.forecast_zeros, True, *rows)
            full = predictive.arm_from_model(model)(tf.reshape(state.arm_input, (1, 4, 3, 1)))[0]
            np.testing.assert_allclose(
                tf.reshape(state.logits, (d, 2))[position],
                tf.reshape(full, (d, 2))[position],
                atol=ATOL,
                err_msg=f"sample {row}, position {position}",
            )
        return state

    first = sample(loop.fresh_state(noise[:1], evidence[:1], observed[:1]), 0)
    fresh = loop.fresh_state(noise[1:], evidence[1:], observed[1:])
    sample(fresh._replace(arm_cache=first.arm_cache), 1)


def test_incremental_needs_a_model_that_takes_row_bands():
    def arm(x):
        return tf.zeros(tf.concat([tf.shape(x), [2]], 0)), tf.zeros_like(x, tf.float32)

    with pytest.raises(ValueError, match="does not support incremental calls"):
        incremental.WindowArm(arm)
    assert "ancestral_cached" not in predictive.PredictiveSampler(arm, (2, 2, 1), 2).all_methods


@pytest.mark.parametrize(
    "build",
    [
        lambda: made.MADE((3, 2, 1), 2, hidden_units=8),
        lambda: gated_pixelcnn.GatedPixelCNN((3, 2, 1), 2, filters=4, num_layers=1),
    ],
    ids=["made", "gated_pixelcnn"],
)
def test_incremental_calls_are_for_pixelcnn_models_only(build):
    model = build()
    with pytest.raises(ValueError, match=r"only PixelCNN models .*; (MADE|GatedPixelCNN) does not"):
        predictive.sampler_for_model(model, incremental=True)
    assert "ancestral_cached" not in predictive.sampler_for_model(model).all_methods


def test_the_benchmark_measures_incremental_rows_against_ancestral_cached():
    from tfps.evaluation import benchmarking

    model = tiny_model((2, 2, 1), 2, filters=4)
    rows = benchmarking.benchmark_sampler(
        predictive.sampler_for_model(model),
        ["ancestral_cached", "fpi"],
        batch_sizes=(2,),
        seeds=range(2),
        log=None,
        incremental_sampler=predictive.sampler_for_model(model, incremental=True),
    )
    names = [row.method for row in rows]
    assert names == [
        "ancestral",
        "ancestral_cached",
        "fpi",
        "ancestral (incremental)",
        "fpi (incremental)",
    ]
    cached = rows[1]
    assert cached.speedup_cached == 1.0
    for row in rows:
        assert row.speedup_cached == pytest.approx(cached.time_mean / row.time_mean)
    table = benchmarking.markdown_table(rows)
    assert "vs ancestral_cached (B=2)" in table and "| fpi (incremental) |" in table
