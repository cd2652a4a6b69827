"""The recorded weights of the suite's trained tiny models (tests/tiny_models.py, `TRAINED`)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfps.models import pixelcnn

import tiny_models


def test_every_recorded_file_is_a_case_and_every_case_is_recorded():
    recorded = sorted(os.listdir(tiny_models.TRAINED))
    expected = sorted(
        os.path.basename(tiny_models.trained_path(*c)) for c in tiny_models.TRAINED_CASES
    )
    assert recorded == expected


def _bpd(model, image_shape, k):
    data = tiny_models.stripes(image_shape, k)
    return float(tf.reduce_mean(pixelcnn.bits_per_dim(model(data)[0], data)))


@pytest.mark.parametrize("case", tiny_models.TRAINED_CASES, ids=str)
def test_a_recorded_model_is_the_fitted_one(case):
    image_shape, k, steps, num_scales = case
    model = tiny_models.trained_model(image_shape, k, steps=steps, num_scales=num_scales)
    with np.load(tiny_models.trained_path(*case)) as recorded:
        weights = [recorded[f"w{i}"] for i in range(len(recorded.files))]
    assert len(weights) == len(model.get_weights())
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    # Fitted to the stripes: far fewer bits than the untrained model of the same seed.
    untrained = tiny_models.tiny_model(image_shape, k, seed=3, num_scales=num_scales)
    assert _bpd(model, image_shape, k) < 0.7 * _bpd(untrained, image_shape, k)
