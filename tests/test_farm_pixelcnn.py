"""Tests for the PixelCNN family of orderings (tfps/models/farm_pixelcnn.py) and FARM's diagonal
schedule (tfps/sampling/farm_parallel.py `diagonal_sample`), issue #29:

* autoregressive in each of its 8 raster orderings (exhaustive check), caught in another;
* every sampling method, through the ordered view, returns the ancestral sample in each
  ordering (the eager oracle of tests/oracles.py);
* the orderings share the Gated PixelCNN's kernels: ordering k is the raster model on the flipped
  / transposed image (zero embedding), ordering 0 is the Gated PixelCNN itself;
* what the transforms cannot read (a random permutation, a transpose of a non-square image) is
  one clear error; the config round-trips through the registry; the objectives train it;
* the diagonal schedule is the ancestral sample at the measured skew (the receptive field's reach,
  `right_reach() + 1`), takes skew (H - 1) + W rounds, and is marked approximate below it, where
  it differs from the ancestral sample.
"""

import functools
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps
from tfps.models import arms, farm_pixelcnn, gated_pixelcnn, orderings
from tfps.sampling import farm_parallel, ordered_view
from tfps.sampling import noise as noise_lib
from tfps.train import ordering_objectives

import oracles

SHAPE, K = (4, 4, 1), 2
VARIANTS = orderings.RASTER_VARIANTS


@functools.lru_cache(maxsize=None)
def _model(shape=SHAPE, k=K, family=VARIANTS, num_layers=1, seed=0):
    keras.utils.set_random_seed(seed)
    model = farm_pixelcnn.OrderedPixelCNN(
        shape, k, orderings=list(family), filters=8, num_layers=num_layers
    )
    for variable in model.trainable_variables:  # logits well above the noise: the order matters
        variable.assign(variable * 3.0 + (0.5 if "embedding" in variable.name else 0.0))
    return model


def test_autoregressive_in_each_of_its_orderings_and_caught_in_another():
    model = _model()
    for index, ordering in enumerate(model.orderings):
        check = tfps.check_autoregressive(model.one_ordering(index), ordering=ordering)
        assert check.exhaustive and check.largest_change <= check.tolerance, ordering
    with pytest.raises(tfps.NotAutoregressiveError, match="not autoregressive in ordering tl_rows"):
        tfps.check_autoregressive(model.one_ordering(VARIANTS.index("tl_cols")), ordering="tl_rows")
    with pytest.raises(tfps.NotAutoregressiveError, match="not autoregressive in raster order"):
        tfps.check_autoregressive(model.one_ordering(VARIANTS.index("br_rows")))


@pytest.mark.parametrize("index", range(len(VARIANTS)), ids=VARIANTS)
def test_every_method_returns_the_ancestral_sample_in_the_ordering(index):
    model = _model()
    sampler = tfps.sampler_for_model(ordered_view.in_ordering(model, index))
    noise = noise_lib.gumbel_noise((4,) + SHAPE + (K,), seed=index)
    expected = oracles.ancestral_in_ordering(model, index, noise)
    for method in sampler.methods:
        result = ordered_view.sample_in_ordering(sampler, model.orderings[index], noise, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)


@pytest.mark.usefixtures("graph_optimizations")
def test_a_colour_image_samples_exactly_with_evidence():
    model = _model((3, 3, 2), 3, ("tr_cols", "bl_rows"))
    sampler = tfps.sampler_for_model(ordered_view.in_ordering(model, 0))
    noise = noise_lib.gumbel_noise((3, 3, 3, 2, 3), seed=1)
    mask = np.zeros((3, 3, 3, 2), bool)
    mask[:, :, 0] = True  # the left column observed
    evidence = np.where(mask, 2, 0).astype(np.int32)
    expected = oracles.ancestral_in_ordering(model, 0, noise, evidence, mask)
    for method in ("ancestral", "fpi"):
        given = ordered_view.sample_in_ordering(
            sampler, model.orderings[0], noise, method, evidence, mask
        )
        np.testing.assert_array_equal(given.samples.numpy(), expected, err_msg=method)


def _numpy_transform(x, variant):
    """x `[B, H, W, ...]` as the image read in `variant` (independent of the permutations)."""
    corner, axis = variant.split("_")
    if corner[0] == "b":
        x = x[:, ::-1]
    if corner[1] == "r":
        x = x[:, :, ::-1]
    return np.swapaxes(x, 1, 2) if axis == "cols" else x


@pytest.mark.usefixtures("graph_optimizations")
def test_the_orderings_share_the_kernels_of_one_gated_pixelcnn():
    family = _model(seed=3)
    keras.utils.set_random_seed(3)
    plain = gated_pixelcnn.GatedPixelCNN(SHAPE, K, filters=8, num_layers=1)
    shared = [v for v in family.trainable_variables if "embedding" not in v.name]
    assert [v.shape for v in shared] == [v.shape for v in plain.trainable_variables]
    assert len(family.trainable_variables) == len(shared) + 1  # + the [8, F] embedding
    for variable, value in zip(shared, plain.trainable_variables):
        variable.assign(value)
    family.ordering_embedding.assign(tf.zeros_like(family.ordering_embedding))
    x = np.random.default_rng(2).integers(0, K, size=(5,) + SHAPE)
    for index, variant in enumerate(VARIANTS):  # the raster model on the transformed image
        read = _numpy_transform(x, variant)
        expected = plain(tf.constant(read.copy()))[0].numpy()
        got = _numpy_transform(family(tf.constant(x), ordering_index=index)[0].numpy(), variant)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=variant)
    # The mc objective's ordering alone (a tensor index, drawn from the seed) trains every shared
    # weight, and of the embedding its own row only; the orderings read the image differently, so
    # their gradients differ. (The channel head's weight on the earlier channels of a pixel has
    # none to read in a one-channel image: no ordering trains it.)
    trained = [v for v in shared if not v.path.endswith("channel_head/w_x")]
    assert len(trained) == len(shared) - 1
    shared_grads = {}
    for s in range(100):
        seed = tf.constant([s, 3])
        index = int(tf.random.stateless_uniform([], seed, 0, len(VARIANTS), dtype=tf.int32))
        if index in shared_grads:
            continue
        with tf.GradientTape() as tape:
            loss, _ = ordering_objectives.objective(family, tf.constant(x), "mc", seed=seed)
        *kernels, embedding = tape.gradient(loss, trained + [family.ordering_embedding])
        kernels = [tf.convert_to_tensor(g).numpy() for g in kernels]
        assert all(np.abs(g).max() > 0 for g in kernels), VARIANTS[index]
        rows = np.abs(tf.convert_to_tensor(embedding).numpy()).max(axis=1)
        assert rows[index] > 0 and np.all(np.delete(rows, index) == 0), VARIANTS[index]
        shared_grads[index] = kernels
    assert len(shared_grads) == len(VARIANTS)
    for i, j in itertools.combinations(range(len(VARIANTS)), 2):
        difference = max(np.abs(a - b).max() for a, b in zip(shared_grads[i], shared_grads[j]))
        assert difference > 1e-6, (VARIANTS[i], VARIANTS[j])


def test_what_the_transforms_cannot_read_is_one_clear_error():
    with pytest.raises(ValueError, match="random.*none of them: a random permutation needs"):
        farm_pixelcnn.OrderedPixelCNN(SHAPE, K, orderings=[orderings.Ordering.random(16, 1)])
    with pytest.raises(ValueError, match="'tl_cols' transposes the image.*got 3x4"):
        farm_pixelcnn.OrderedPixelCNN((3, 4, 1), K, orderings=["tl_rows", "tl_cols"])
    rows_only = farm_pixelcnn.OrderedPixelCNN((3, 4, 1), K, orderings=["tl_rows", "br_rows"])
    assert rows_only(tf.zeros((1, 3, 4, 1), tf.int32), ordering_index=1)[0].shape == (1, 3, 4, 1, 2)
    with pytest.raises(ValueError, match=r"ordering_index must be in \[0, 2\), got 2"):
        rows_only(tf.zeros((1, 3, 4, 1), tf.int32), ordering_index=2)


def test_the_family_round_trips_through_its_config_and_the_registry():
    model = _model()
    config = model.model_config()
    assert config["arch"] == "farm_pixelcnn" and len(config["orderings"]) == 8
    built = arms.build_model(config)
    assert isinstance(built, farm_pixelcnn.OrderedPixelCNN) and built.orderings == model.orderings
    assert type(model).from_config(model.get_config()).model_config() == config
    assert "farm_pixelcnn" in arms.FAMILIES


# ------------------------------------------------------------------ the diagonal schedule


def test_the_measured_skew_is_the_receptive_fields_reach():
    for layers in (1, 2):
        model = _model((6, 6, 1), num_layers=layers)
        for index in (0, 3, 7):
            assert farm_parallel.required_skew(model, index) == model.right_reach() + 1


@pytest.mark.parametrize("index", [0, 1, 6], ids=[VARIANTS[i] for i in (0, 1, 6)])
def test_the_diagonal_schedule_is_ancestral_at_the_measured_skew(index):
    model = _model((6, 6, 1), 3)
    noise = noise_lib.gumbel_noise((8, 6, 6, 1, 3), seed=index)
    expected = oracles.ancestral_in_ordering(model, index, noise)
    result = farm_parallel.diagonal_sample(model, noise, index)
    skew = model.right_reach() + 1
    assert result.exact and result.rounds == skew * 5 + 6 < 36
    np.testing.assert_array_equal(result.samples, expected)
    full = farm_parallel.diagonal_sample(model, noise, index, skew=6)  # skew W: raster order
    assert full.exact and full.rounds == 36
    np.testing.assert_array_equal(full.samples, expected)


def test_below_the_skew_the_schedule_is_approximate_and_differs():
    model = _model((6, 6, 1), 3)
    noise = noise_lib.gumbel_noise((64, 6, 6, 1, 3), seed=9)
    result = farm_parallel.diagonal_sample(model, noise, 0, skew=1)
    assert not result.exact and result.rounds == 11
    assert (np.asarray(result.samples) != oracles.ancestral_in_ordering(model, 0, noise)).any()
    with pytest.raises(ValueError, match=r"skew must be in \[1, 6\]"):
        farm_parallel.diagonal_sample(model, noise, 0, skew=7)


def test_channels_take_one_round_each_and_stay_exact():
    model = _model((3, 3, 2), 3, ("tr_cols", "bl_rows"))
    noise = noise_lib.gumbel_noise((32, 3, 3, 2, 3), seed=2)
    result = farm_parallel.diagonal_sample(model, noise, 1)
    assert result.exact and result.rounds % 2 == 0
    np.testing.assert_array_equal(result.samples, oracles.ancestral_in_ordering(model, 1, noise))


def test_a_run_config_builds_the_family_it_names():
    built = arms.build_model(
        {"arch": "farm_pixelcnn", "event_shape": [4, 4, 1], "num_categories": 2,
         "filters": 12, "num_layers": 2, "kernel_size": 5, "orderings": "tl_rows,br_cols"}
    )  # fmt: skip
    assert (built.filters, built.num_layers, built.kernel_size) == (12, 2, 5)
    assert [o.name for o in built.orderings] == ["tl_rows", "br_cols"]
