"""The diagonal schedule's exact skew comes from the model's structure (the families'
`pixel_dependencies`, tfps/sampling/farm_parallel.py `skew_for` and `required_skew`), never from a
probe of one set of weights.

The probe is kept here as the cross-check: the perturbation of every pixel, in several random
images, against the logits at every pixel. What it sees must lie inside the derived structure; on
a MADE whose weights are all positive (every unit in ReLU's linear part, so every path of the
masks carries a change) it sees the whole structure, an independent oracle for the mask product.
"""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import farm_made, farm_pixelcnn
from tfps.sampling import farm_parallel
from tfps.sampling import noise as noise_lib

import oracles


def probe_dependencies(model, index, trials=3, seed=0, tolerance=1e-6):
    """bool `[P, P]`, `[t, s]` True where changing every channel of pixel s changed the logits at
    pixel t (other than s) in ordering `index`, in any of `trials` random images."""
    shape, k = tuple(model.event_shape), int(model.num_categories)
    pixels, channels = shape[0] * shape[1], shape[2]
    rng, seen = np.random.default_rng(seed), np.zeros((pixels, pixels), bool)
    for _ in range(trials):
        base = rng.integers(0, k, size=(pixels, channels))
        batch = np.repeat(base[None], pixels + 1, axis=0)
        batch[np.arange(1, pixels + 1), np.arange(pixels)] = (base + 1) % k
        logits = model(tf.constant(batch.reshape((-1,) + shape), tf.int32), ordering_index=index)
        logits = np.asarray(logits[0]).reshape(pixels + 1, pixels, channels * k)
        changed = np.abs(logits[1:] - logits[:1]).max(axis=-1) > tolerance  # [source, target]
        seen |= changed.T
    np.fill_diagonal(seen, False)
    return seen


def _made(shape, orderings, hidden_units, seed=0, num_layers=1):
    keras.utils.set_random_seed(seed)
    return farm_made.OrderedMADE(
        shape, 2, orderings=orderings, hidden_units=hidden_units, num_layers=num_layers
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_made_needs_the_whole_width_whatever_its_weights(seed):
    """8x8 tl_rows, 10 hidden units: hidden degrees 1, 7, 13, ..., so pixel (4, 0) (degree 33)
    sees a hidden unit of degree 32, which sees pixel (3, 7): one row up, 7 columns right, skew
    8. A probe of random weights saw 4, 4, 2, 3 for these seeds."""
    model = _made((8, 8, 1), ["tl_rows"], 10, seed)
    dependencies = model.pixel_dependencies(0)
    assert dependencies[4 * 8 + 0, 3 * 8 + 7]
    assert farm_parallel.required_skew(model, 0) == 8


def test_the_mask_product_is_what_an_all_positive_made_probes():
    """With every weight positive and biases 0, every hidden unit is active for every input and
    a change of a one-hot input reaches every output its masks connect: the probe then sees
    exactly the structure (two layers, four orderings)."""
    family = ("tl_rows", "br_cols", "tr_rows", "bl_cols")
    model = _made((4, 4, 2), family, 12, num_layers=2)
    rng = np.random.default_rng(0)
    for w in model.weights:
        positive = rng.uniform(0.5, 1.5, w.shape) if len(w.shape) > 1 else np.zeros(w.shape)
        w.assign(positive.astype(np.float32))
    for index in range(len(family)):
        structure = model.pixel_dependencies(index)
        np.testing.assert_array_equal(probe_dependencies(model, index), structure, str(index))


def test_the_pixelcnn_familys_reach_bounds_what_it_probes_and_is_reached():
    family = ("tl_rows", "br_cols", "tr_rows")
    keras.utils.set_random_seed(0)
    model = farm_pixelcnn.OrderedPixelCNN((6, 6, 1), 3, orderings=family, filters=8, num_layers=2)
    for index in range(len(family)):
        structure = model.pixel_dependencies(index)
        probed = probe_dependencies(model, index)
        assert not (probed & ~structure).any(), f"the probe saw a dependency outside {index}"
        order, read_shape = farm_parallel.read_order(model, index)
        # The random weights realise the reach, so the probe's own skew is the derived one:
        # R + 1 = (2 + 1) * 1 + 1.
        assert farm_parallel.skew_for(probed, order, read_shape) == 4
        assert farm_parallel.required_skew(model, index) == 4


def test_the_derived_skew_samples_the_ancestral_sample_of_a_made():
    model = _made((4, 4, 1), ["tl_rows", "br_rows"], 10, seed=1)
    for w in model.weights:
        w.assign(w * 6.0)  # logits that outweigh the noise
    noise = noise_lib.gumbel_noise((6, 4, 4, 1, 2), seed=3)
    for index in (0, 1):
        expected = oracles.ancestral_in_ordering(model, index, noise)
        for jit_compile in (False, True):
            result = farm_parallel.diagonal_sample(model, noise, index, jit_compile=jit_compile)
            assert result.exact and result.rounds == result.evaluations == 16  # skew W
            np.testing.assert_array_equal(result.samples, expected)


class _Opaque:
    """A family of orderings whose structure tfps cannot read (a MADE behind a plain call)."""

    def __init__(self, model):
        self.inner = model
        self.event_shape, self.num_categories = model.event_shape, model.num_categories
        self.orderings = model.orderings

    def __call__(self, x, training=False, ordering_index=0):
        return self.inner(x, training=training, ordering_index=ordering_index)


def test_a_model_without_readable_structure_is_never_called_exact():
    opaque = _Opaque(_made((4, 4, 1), ["tl_rows"], 10))
    noise = noise_lib.gumbel_noise((2, 4, 4, 1, 2), seed=0)
    with pytest.raises(ValueError, match="cannot be read from its structure"):
        farm_parallel.required_skew(opaque, 0)
    with pytest.raises(ValueError, match="cannot be read from its structure"):
        farm_parallel.diagonal_sample(opaque, noise, 0)
    for skew in (2, 4):  # even at the width (raster order) it is not claimed
        assert not farm_parallel.diagonal_sample(opaque, noise, 0, skew=skew).exact


def test_a_dependency_on_a_later_pixel_is_refused():
    dependencies = np.zeros((4, 4), bool)
    dependencies[0, 1] = True  # pixel 0 depends on pixel 1, read after it in raster order
    with pytest.raises(ValueError, match="not autoregressive"):
        farm_parallel.skew_for(dependencies, np.arange(4), (2, 2))


def test_the_logits_cache_does_not_keep_a_model_alive():
    model = _made((4, 4, 1), ["tl_rows", "br_rows"], 8)
    farm_parallel.parallel_sample(model, noise_lib.gumbel_noise((1, 4, 4, 1, 2), seed=0))
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
