"""Tests for orderings as data (tfps/models/orderings.py), the ordered view that samples in them
(tfps/sampling/ordered_view.py) and the MADE family with k weight-shared orderings
(tfps/models/farm_made.py), the first step of issue #29 (FARM):

* a bad ordering is one clear ValueError; the 8 raster variants are distinct permutations starting
  and ending at the right pixels, with a pixel's channels together; permute / unpermute and the
  JSON record round-trip;
* `check_autoregressive(..., ordering=pi)`: `OrderedMADE` passes in each of its orderings and is
  caught in another one, and a model that leaks in its own ordering is caught;
* every sampling method, through the ordered view, returns the ancestral sample in ordering pi of
  an independent eager loop (each step fills position pi[t]) in all 8 raster orderings and a
  random permutation;
* the k orderings share one set of weights, that of a MADE (ordering 0 natural: MADE's logits).
"""

import functools
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps
from tfps.models import arms, farm_made, made, orderings
from tfps.sampling import noise as noise_lib
from tfps.sampling import ordered_view

import oracles

Ordering = orderings.Ordering
SHAPE, K = (3, 3, 1), 2  # a tiny binary image: 9 variables
FAMILY = orderings.RASTER_VARIANTS + (Ordering.random(9, seed=5),)


@functools.lru_cache(maxsize=None)
def _model(event_shape=SHAPE, k=K, family=FAMILY, hidden_units=32, seed=0):
    keras.utils.set_random_seed(seed)
    model = farm_made.OrderedMADE(
        event_shape, k, orderings=list(family), hidden_units=hidden_units, num_layers=2
    )
    for variable in model.trainable_variables:  # logits well above the noise: the order matters
        variable.assign(variable * 3.0)
    return model


# ----------------------------------------------------------------------------- Ordering


@pytest.mark.parametrize(
    "permutation, d, match",
    [
        ([0, 2, 2, 3], None, r"position 2 is repeated \(and 1 missing\)"),
        ([0, 1, 4, 2], None, r"position 4 is out of range \[0, 4\)"),
        ([0, -1, 1], None, r"position -1 is out of range"),
        ([0, 1, 2], 4, r"needs 4 positions, got 3 \(wrong length\)"),
        ([0, 1.5, 2], None, r"holds integer positions, got 1.5 \(float\)"),
        (np.array([0.0, 1.0]), None, r"holds integer positions, got 0.0 \(float\)"),
        ([True, False], None, r"holds integer positions, got True \(bool\)"),
        (["0", "1"], None, r"holds integer positions, got '0' \(str\)"),
        ([[0, 1], [2, 3]], None, r"1-D list of the positions 0 .. d-1, got shape \(2, 2\)"),
        ([], None, r"non-empty 1-D list"),
    ],
)
def test_a_bad_ordering_is_one_clear_error(permutation, d, match):
    with pytest.raises(ValueError, match=match):
        Ordering(permutation, d)


def test_numpy_integers_and_tuples_are_orderings():
    assert Ordering(np.array([2, 0, 1], np.int32)) == Ordering((2, 0, 1))
    assert Ordering(np.arange(4, dtype=np.uint8)).is_natural()


# (first pixel, second pixel, last pixel) of each variant of a 3 x 4 image.
H, W = 3, 4
CORNER_PIXELS = {
    "tl_rows": ((0, 0), (0, 1), (H - 1, W - 1)),
    "tl_cols": ((0, 0), (1, 0), (H - 1, W - 1)),
    "tr_rows": ((0, W - 1), (0, W - 2), (H - 1, 0)),
    "tr_cols": ((0, W - 1), (1, W - 1), (H - 1, 0)),
    "bl_rows": ((H - 1, 0), (H - 1, 1), (0, W - 1)),
    "bl_cols": ((H - 1, 0), (H - 2, 0), (0, W - 1)),
    "br_rows": ((H - 1, W - 1), (H - 1, W - 2), (0, 0)),
    "br_cols": ((H - 1, W - 1), (H - 2, W - 1), (0, 0)),
}


def test_the_8_raster_variants_are_distinct_and_start_and_end_at_their_corners():
    assert set(orderings.RASTER_VARIANTS) == set(CORNER_PIXELS)
    variants = {v: Ordering.raster(H, W, 1, v) for v in orderings.RASTER_VARIANTS}
    assert len({tuple(o.permutation) for o in variants.values()}) == 8
    for name, ordering in variants.items():
        assert sorted(ordering.permutation) == list(range(H * W)) and ordering.name == name
        pixels = [divmod(int(p), W) for p in ordering.permutation]
        first, second, last = CORNER_PIXELS[name]
        assert (pixels[0], pixels[1], pixels[-1]) == (first, second, last), name
    assert variants["tl_rows"].is_natural()
    np.testing.assert_array_equal(variants["br_rows"].permutation, np.arange(H * W)[::-1])
    with pytest.raises(ValueError, match="unknown raster variant 'diagonal'; choose one of"):
        Ordering.raster(H, W, 1, "diagonal")


def test_raster_variants_order_pixels_and_keep_the_channels_of_a_pixel_in_order():
    c = 3
    for name in orderings.RASTER_VARIANTS:
        with_channels = Ordering.raster(H, W, c, name).permutation.reshape(H * W, c)
        pixels = Ordering.raster(H, W, 1, name).permutation
        np.testing.assert_array_equal(with_channels, pixels[:, None] * c + np.arange(c))


def test_permute_unpermute_inverse_and_json_round_trip():
    ordering = Ordering.random(12, seed=3)
    rank = ordering.inverse
    np.testing.assert_array_equal(rank[ordering.permutation], np.arange(12))
    x = np.random.default_rng(0).integers(0, 5, size=(2, 12, 3))
    z = ordering.permute(x).numpy()
    np.testing.assert_array_equal(z[:, 4], x[:, ordering.permutation[4]])  # z_t = x_pi[t]
    np.testing.assert_array_equal(ordering.unpermute(z).numpy(), x)
    np.testing.assert_array_equal(ordering.permute(ordering.unpermute(x)).numpy(), x)
    again = Ordering.from_json(ordering.to_json())
    assert again == ordering and again.name == "random(seed=3)" and hash(again) == hash(ordering)
    assert Ordering.from_json(ordering.to_config(), 12) == ordering
    with pytest.raises(ValueError, match="wrong length"):
        Ordering.from_json(ordering.to_json(), 13)
    assert orderings.as_ordering("br_cols", (3, 4, 1)) == Ordering.raster(3, 4, 1, "br_cols")
    assert orderings.as_ordering("tl_rows", (5,)).is_natural()  # a sequence: a one-row image


# ----------------------------------------------------------------- autoregressive in an ordering


def test_ordered_made_is_autoregressive_in_each_of_its_orderings_and_caught_in_another():
    model = _model()
    assert model.num_orderings == 9
    for index, ordering in enumerate(model.orderings):
        check = tfps.check_autoregressive(model.one_ordering(index), ordering=ordering)
        assert check.exhaustive and check.largest_change <= check.tolerance, ordering
        assert check.unused == (), f"{ordering}: no later logit depends on {check.unused}"
    tl_cols = model.one_ordering(1)  # column by column: leaks in row order
    with pytest.raises(tfps.NotAutoregressiveError, match="not autoregressive in ordering tl_rows"):
        tfps.check_autoregressive(tl_cols, ordering="tl_rows")
    with pytest.raises(tfps.NotAutoregressiveError, match="not autoregressive in raster order"):
        tfps.check_autoregressive(tl_cols)  # the default: today's raster-order check
    with pytest.raises(tfps.NotAutoregressiveError, match="ordering random"):
        tfps.check_autoregressive(model.one_ordering(0), ordering=model.orderings[8])
    tfps.check_autoregressive(model.one_ordering(0))  # ordering 0 is the raster order


class _LeakyOrderedMADE(farm_made.OrderedMADE):
    """Output masks >= instead of >: in every ordering the logits of x_j see x_j."""

    def masks(self):
        hidden = made.made_degrees(self.num_variables, 1, self.hidden_units, self.num_layers)[-2]
        last = np.stack(
            [(o.inverse[None, :] + 1 >= hidden[:, None]) for o in self.orderings]
        ).repeat(self.num_categories, axis=-1)
        return super().masks()[:-1] + [last.astype(np.float32)]


def test_a_model_leaking_in_its_own_ordering_is_caught_at_its_first_step():
    keras.utils.set_random_seed(0)
    model = _LeakyOrderedMADE(SHAPE, 3, orderings=["br_rows"], hidden_units=16)
    with pytest.raises(tfps.NotAutoregressiveError, match="generation steps 0 >= 0") as caught:
        tfps.check_autoregressive(model.one_ordering(0), ordering="br_rows")
    # The first step of br_rows is the bottom right pixel; its logits see itself.
    assert caught.value.earlier == caught.value.later == (2, 2, 0)


# ---------------------------------------------------------------------- exact sampling


@pytest.mark.parametrize("index", range(len(FAMILY)), ids=[getattr(o, "name", o) for o in FAMILY])
def test_every_method_returns_the_ancestral_sample_in_the_ordering(index):
    model = _model()
    view = ordered_view.in_ordering(model, index)
    sampler = tfps.sampler_for_model(view)
    assert isinstance(sampler, tfps.Sampler) and sampler.event_shape == (9,)
    noise = noise_lib.gumbel_noise((4,) + SHAPE + (K,), seed=index)
    expected = oracles.ancestral_in_ordering(model, index, noise)
    ordering = model.orderings[index]
    # The same sample from tests/oracles.py run on the view, in ordering space.
    z_noise = ordering.permute(tf.reshape(noise, (4, 9, K)))
    z_reference = oracles.ancestral_reference(view, z_noise)
    np.testing.assert_array_equal(
        ordering.unpermute(z_reference).numpy().reshape(expected.shape), expected
    )
    step = np.empty(9, np.int32)  # the generation step of each position, from pi itself
    step[list(ordering.permutation)] = np.arange(9)
    for method in sampler.methods:
        result = ordered_view.sample_in_ordering(sampler, ordering, noise, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
        # accepted_at in x layout: in generation order it only grows, up to each example's calls;
        # ancestral sampling accepts position pi[t] at call t + 1.
        accepted = result.accepted_at.numpy().reshape(4, 9)
        in_order = accepted[:, list(ordering.permutation)]
        assert np.all(np.diff(in_order, axis=1) >= 0) and np.all(in_order[:, 0] == 1), method
        np.testing.assert_array_equal(in_order[:, -1], result.arm_calls_per_example.numpy())
        if method == "ancestral":
            np.testing.assert_array_equal(accepted, np.tile(step + 1, (4, 1)))
        assert 1 <= int(result.arm_calls) <= 9


def test_the_ordering_changes_the_sample_for_the_same_noise():
    """The oracle is ordering-aware: one noise, 9 orderings, 9 different samples."""
    model = _model()
    noise = noise_lib.gumbel_noise((4,) + SHAPE + (K,), seed=0)
    samples = {oracles.ancestral_in_ordering(model, i, noise).tobytes() for i in range(len(FAMILY))}
    assert len(samples) == 9, len(samples)


def test_an_image_with_channels_samples_exactly_in_a_raster_variant_with_evidence():
    model = _model((2, 2, 2), 3, ("tr_cols", "bl_rows"), hidden_units=24)
    bl_rows = orderings.as_ordering("bl_rows", model.event_shape)
    sampler = tfps.sampler_for_model(ordered_view.in_ordering(model, bl_rows))
    noise = noise_lib.gumbel_noise((3, 2, 2, 2, 3), seed=1)
    expected = oracles.ancestral_in_ordering(model, 1, noise)
    for method in ("ancestral", "fpi"):
        result = ordered_view.sample_in_ordering(sampler, model.orderings[1], noise, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
    # Evidence in x layout (the top row observed): kept, and the rest as the oracle given it.
    mask = np.zeros((3, 2, 2, 2), bool)
    mask[:, 0] = True
    evidence = np.where(mask, 2, 0).astype(np.int32)
    expected = oracles.ancestral_in_ordering(model, 1, noise, evidence, mask)
    assert (expected[mask] == 2).all()
    for method in ("ancestral", "fpi"):
        given = ordered_view.sample_in_ordering(
            sampler, model.orderings[1], noise, method, evidence, mask
        )
        np.testing.assert_array_equal(given.samples.numpy(), expected, err_msg=method)


def test_the_ordered_view_refuses_what_is_not_an_ordering_of_the_model():
    model = _model()
    with pytest.raises(ValueError, match=r"ordering_index must be in \[0, 9\), got 9"):
        ordered_view.in_ordering(model, 9)
    with pytest.raises(ValueError, match="is not one of the 9 orderings of OrderedMADE"):
        ordered_view.in_ordering(model, Ordering.random(9, seed=99))
    with pytest.raises(ValueError, match="wrong length"):
        ordered_view.in_ordering(model, Ordering.natural(8))
    with pytest.raises(ValueError, match="wrong length"):
        orderings.as_ordering(list(range(8)), SHAPE)
    with pytest.raises(TypeError, match="an ordering is an index into `model.orderings` or an"):
        ordered_view.in_ordering(model, "bl_rows")  # a name: as_ordering reads it first
    with pytest.raises(ValueError, match="ordering_index must be in \\[0, 9\\), got 9"):
        model(tf.zeros((1,) + SHAPE, tf.int32), ordering_index=9)
    plain = made.MADE(SHAPE, K, hidden_units=8)
    with pytest.raises(ValueError, match="MADE has no `orderings` to index"):
        ordered_view.in_ordering(plain, 0)
    view = ordered_view.in_ordering(plain, Ordering.natural(9))  # any ordering the model honours
    assert view.event_shape == (9,) and view.num_categories == K


# -------------------------------------------------------------------- weight sharing, config


def test_the_k_orderings_share_one_set_of_weights_that_of_a_made():
    def shapes(model):
        return [tuple(v.shape) for v in model.trainable_variables]

    one = _model(family=("tl_rows",))
    eight = _model(family=orderings.RASTER_VARIANTS)
    keras.utils.set_random_seed(1)
    plain = made.MADE(SHAPE, K, hidden_units=32, num_layers=2)
    assert shapes(one) == shapes(eight) == shapes(plain) and len(shapes(plain)) == 6
    x = tf.constant(np.random.default_rng(2).integers(0, K, size=(5,) + SHAPE), tf.int32)
    for model in (one, eight):  # ordering 0 (tl_rows) with MADE's weights: MADE's logits
        for variable, value in zip(model.trainable_variables, plain.trainable_variables):
            variable.assign(value)
        np.testing.assert_allclose(model(x)[0].numpy(), plain(x)[0].numpy(), atol=1e-6)
    # Each ordering's loss alone trains every weight (the one kernel of each layer); the masks
    # of the input and output layers are the ordering's, so those gradients differ by ordering.
    first_and_last = []
    for i in range(8):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(x, eight(x, ordering_index=i)[0])
            )
        grads = [g.numpy() for g in tape.gradient(loss, eight.trainable_variables)]
        assert all(np.abs(g).max() > 0 for g in grads), FAMILY[i]
        first_and_last.append((grads[0], grads[-2]))  # the kernels of the first and last layers
    for i, j in itertools.combinations(range(8), 2):
        for a, b in zip(first_and_last[i], first_and_last[j]):
            assert np.abs(a - b).max() > 1e-6, (FAMILY[i], FAMILY[j])


def test_the_family_round_trips_through_its_config_and_the_registry():
    model = _model()
    config = model.model_config()
    assert config["arch"] == "farm_made" and len(config["orderings"]) == 9
    assert config["orderings"][0] == {"name": "tl_rows", "permutation": list(range(9))}
    built = arms.build_model(config)
    assert isinstance(built, farm_made.OrderedMADE) and built.orderings == model.orderings
    assert type(model).from_config(model.get_config()).model_config() == config
    with pytest.raises(ValueError, match="the orderings of a family must differ"):
        farm_made.OrderedMADE(SHAPE, K, orderings=["tl_rows", "tl_rows"], hidden_units=8)
    with pytest.raises(ValueError, match="at least one ordering"):
        farm_made.OrderedMADE(SHAPE, K, orderings=[], hidden_units=8)
    default = arms.build_model({"arch": "farm_made", "event_shape": [4], "num_categories": 3})
    assert default.orderings == (Ordering.natural(4),)


def test_a_plain_made_in_its_natural_ordering_samples_as_itself():
    """The view in the identity ordering is the model: the same samples as `sampler_for_model`."""
    keras.utils.set_random_seed(4)
    plain = made.MADE(SHAPE, 3, hidden_units=16)
    noise = noise_lib.gumbel_noise((3,) + SHAPE + (3,), seed=2)
    expected = tfps.sampler_for_model(plain).sample(noise, "fpi").samples.numpy()
    view = ordered_view.in_ordering(plain, Ordering.natural(9))
    result = ordered_view.sample_in_ordering(tfps.sampler_for_model(view), view.ordering, noise)
    np.testing.assert_array_equal(result.samples.numpy(), expected)
    raster = tfps.sampler_for_model(ordered_view.in_ordering(plain, None))  # None: raster order
    flat = raster.sample(tf.reshape(noise, (3, 9, 3)), "fpi").samples.numpy()
    np.testing.assert_array_equal(flat.reshape(expected.shape), expected)
    with pytest.raises(tfps.NotAutoregressiveError, match="in ordering br_rows"):
        tfps.check_autoregressive(plain, ordering="br_rows")
