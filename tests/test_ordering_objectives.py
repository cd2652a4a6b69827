"""Tests for tfps/train/ordering_objectives.py: FARM's objectives over a family of orderings.

The mixture likelihood is checked against a brute-force sum over all 2^9 images of a 3 x 3 binary
OrderedMADE, each ordering's joint computed by an independent chain of conditionals (one call per
generation step, the later variables zeroed); FARM's ensemble (eq. 2-3) and KL (eq. 5) against
numpy on the model's probabilities; a run trains with each objective and reports every ordering's
bpd and the mixture's.
"""

import itertools
import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import family, farm_made, orderings
from tfps.train import config as config_lib
from tfps.train import metrics as metrics_lib
from tfps.train import ordering_objectives as objectives
from tfps.train import training

from tiny_models import farm_config

SHAPE, K = (3, 3, 1), 2
FAMILY = ("tl_rows", "br_rows", "tr_cols")


def _model(family=FAMILY, seed=0):
    keras.utils.set_random_seed(seed)
    return farm_made.OrderedMADE(SHAPE, K, orderings=family, hidden_units=16)


def _all_images():
    return np.array(list(itertools.product(range(K), repeat=9)), np.int32).reshape(-1, *SHAPE)


def _chain_log_prob(model, index, x):
    """log p_index(x) `[B]` by the chain rule in ordering `index`, one model call per step, with
    every variable not yet generated set to 0 (what the conditional may not see)."""
    ordering = model.orderings[index]
    flat = x.reshape(len(x), -1)
    seen = np.zeros_like(flat)
    total = np.zeros(len(x))
    for position in ordering.permutation:
        logits = model(seen.reshape(x.shape), ordering_index=index)[0].numpy()
        log_probs = tf.nn.log_softmax(logits.reshape(len(x), -1, K)).numpy()
        total += log_probs[np.arange(len(x)), position, flat[:, position]]
        seen[:, position] = flat[:, position]
    return total


def test_the_mixture_likelihood_is_the_brute_force_mean_of_the_orderings_joints():
    model, x = _model(), _all_images()
    d = x[0].size
    chains = np.stack([_chain_log_prob(model, i, x) for i in range(len(FAMILY))])  # [k, 512]
    for i, joint in enumerate(chains):  # each ordering is a distribution over the 512 images
        np.testing.assert_allclose(np.exp(joint).sum(), 1.0, rtol=1e-5, err_msg=FAMILY[i])
    bpd = objectives.ordering_bpd(model, x).numpy()  # one call per ordering
    np.testing.assert_allclose(bpd, -chains / d / math.log(2), rtol=1e-5, atol=1e-6)
    mixture = np.exp(chains).mean(axis=0)
    got = objectives.mixture_bpd(model, x).numpy()
    np.testing.assert_allclose(got, -np.log2(mixture) / d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sum(2.0 ** (-got * d)), 1.0, rtol=1e-5)
    # Per image: at least the best ordering's bpd, at most it + log2(k) / d, and at most the
    # orderings' mean (Jensen).
    best = bpd.min(axis=0)
    assert np.all(got >= best - 1e-6)
    assert np.all(got <= best + math.log2(len(FAMILY)) / d + 1e-6)
    assert np.all(got <= bpd.mean(axis=0) + 1e-6)


# The generation step of each pixel 3 r + c of the 3 x 3 image in each ordering of FAMILY, by hand:
# tl_rows reads row by row from the top left, br_rows the reverse, tr_cols column by column from
# the top right (the right column downwards first).
RANKS = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8],  # tl_rows
        [8, 7, 6, 5, 4, 3, 2, 1, 0],  # br_rows
        [6, 3, 0, 7, 4, 1, 8, 5, 2],  # tr_cols
    ],
    np.float64,
)
WEIGHTS = RANKS / RANKS.sum(axis=0)  # FARM's w (eq. 2): proportional to the evidence


def test_evidence_weights_follow_each_orderings_evidence():
    family = [orderings.Ordering.raster(3, 3, 1, name) for name in FAMILY]
    w = objectives.evidence_weights(family)
    assert w.shape == (3, 9)
    np.testing.assert_allclose(w, WEIGHTS, rtol=1e-6)
    # The top-left pixel is step 0 of tl_rows (no evidence), step 8 of br_rows, step 6 of tr_cols.
    np.testing.assert_allclose(w[:, 0], [0.0, 8 / 14, 6 / 14], rtol=1e-6)
    lone = objectives.evidence_weights(family[:1])
    assert lone[0, 0] == 1.0 and np.all(lone == 1.0)  # uniform where no ordering has any


def _numpy_probs(model, x):
    return np.stack(
        [
            tf.nn.softmax(model(x, ordering_index=i)[0]).numpy().reshape(len(x), -1, K)
            for i in range(model.num_orderings)
        ]
    )  # [k, B, d, K]


def test_farms_ensemble_and_kl_are_eq_2_3_and_5():
    model = _model()
    x = _all_images()[::37]
    probs = _numpy_probs(model, x)
    w = WEIGHTS[:, None, :, None]  # by hand, not from evidence_weights
    hat = (w * probs).sum(axis=0)  # [B, d, K]
    flat = x.reshape(len(x), -1)
    of_x = np.take_along_axis(hat, flat[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(
        objectives.ensemble_bpd(model, x).numpy(), -np.log2(of_x).mean(axis=-1), rtol=1e-5
    )
    kl = (probs * (np.log(probs) - np.log(hat)[None])).sum(axis=-1)  # [k, B, d]
    expected = (w[..., 0] * kl).sum(axis=0).mean(axis=-1) / math.log(2)
    np.testing.assert_allclose(objectives.ensemble_kl(model, x).numpy(), expected, rtol=1e-4)
    assert np.all(expected > 0)


def test_with_one_ordering_every_objective_is_the_models_bpd():
    model = _model(family=("br_cols",))
    x = _all_images()[::29]
    bpd = float(tf.reduce_mean(objectives.ordering_bpd(model, x)))
    for name in objectives.OBJECTIVES:
        loss, terms = objectives.objective(model, x, name, seed=tf.constant([1, 2]))
        np.testing.assert_allclose(float(loss), bpd, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(float(terms["bpd"]), bpd, rtol=1e-5, err_msg=name)
    assert float(objectives.objective(model, x, "ensemble_kl")[1]["ordering_kl"]) < 1e-6


def test_monte_carlo_trains_the_ordering_its_seed_draws():
    model, x = _model(), _all_images()[::23]
    bpd = tf.reduce_mean(objectives.ordering_bpd(model, x), axis=-1).numpy()
    drawn = set()
    for s in range(12):
        seed = tf.constant([s, 7])
        index = int(tf.random.stateless_uniform([], seed, 0, 3, dtype=tf.int32))
        loss, _ = objectives.objective(model, x, "mc", seed=seed)
        np.testing.assert_allclose(float(loss), bpd[index], rtol=1e-5)
        drawn.add(index)
    assert drawn == {0, 1, 2}


def test_an_unknown_objective_is_one_clear_error():
    with pytest.raises(ValueError, match="ordering_objective must be one of mc, ensemble"):
        objectives.objective(_model(), _all_images()[:2], "jsd")


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(arch="pixelcnn", orderings="tl_rows,br_rows"), "orderings is for the archs of a"),
        (dict(orderings="tl_rows,sideways"), "sideways"),
        (dict(orderings="tl_rows,tl_rows"), "must differ"),
        (dict(orderings="raster8", forecast_steps=2), "forecast_steps needs one ordering"),
        (dict(orderings="br_rows", forecast_steps=2), "needs one ordering, the natural one"),
        (dict(arch="farm_pixelcnn", orderings="tl_rows,random"), "unknown raster variant"),
        (dict(ordering_objective="jsd"), "ordering_objective must be one of 'mc'"),
    ],
)
def test_bad_ordering_settings_are_one_clear_error(values, message):
    config = config_lib.TrainConfig(**{"dataset": "digits", "arch": "farm_made", **values})
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_raster8_names_the_8_raster_variants():
    raster8 = family.orderings_of("raster8", (4, 4, 1))
    assert [o.name for o in raster8] == list(orderings.RASTER_VARIANTS)
    assert [o.name for o in family.orderings_of(" br_rows , tl_cols", (4, 4, 1))] == [
        "br_rows",
        "tl_cols",
    ]


# Each objective trains once, the last two on the PixelCNN family (digits are 8x8: 2 layers).
FAMILY_RUNS = list(zip(objectives.OBJECTIVES, ["farm_made"] * 2 + ["farm_pixelcnn"] * 2))


@pytest.mark.usefixtures("graph_optimizations")
@pytest.mark.parametrize("objective, arch", FAMILY_RUNS)
def test_a_family_trains_with_each_objective_and_reports_every_ordering(objective, arch, tmp_path):
    extra = dict(filters=8, num_layers=2) if arch == "farm_pixelcnn" else {}
    config = farm_config(ordering_objective=objective, arch=arch, **extra)
    metrics = training.train(config, str(tmp_path))
    assert metrics["step"] == 3
    per_ordering = [metrics["test_bpd_ordering_0"], metrics["test_bpd_ordering_1"]]
    assert np.all(np.isfinite(per_ordering)) and np.isfinite(metrics["test_mixture_bpd"])
    assert metrics["test_mixture_bpd"] <= np.mean(per_ordering) + 1e-5  # Jensen, per image
    np.testing.assert_allclose(metrics["test_bpd"], per_ordering[0], rtol=1e-5)
    with open(os.path.join(tmp_path, "config.json")) as f:
        recorded = json.load(f)
    assert [o["name"] for o in recorded["model"]["orderings"]] == ["tl_rows", "br_rows"]
    assert recorded["train"]["ordering_objective"] == objective
    model, _ = training.load_trained(str(tmp_path))
    assert model.num_orderings == 2 and model.ARCH == arch


def test_a_family_whose_first_ordering_is_not_raster_order_trains(tmp_path):
    """Training checks a family in each of its orderings (`causality.quick_check`), not in raster
    order, so a family read bottom-up first trains."""
    config = farm_config(arch="farm_pixelcnn", orderings="br_cols,tl_rows", filters=4, steps=2)
    metrics = training.train(config, str(tmp_path))
    assert metrics["step"] == 2 and np.isfinite(metrics["test_bpd_ordering_1"])


def test_a_family_evaluation_calls_each_ordering_once_per_batch():
    """Ordering 0's bpd is the model's `bpd` and one of every ordering's: one call serves both."""
    model = _model()
    calls = []
    call = model.call

    def counted(x, training=False, ordering_index=0):
        calls.append(ordering_index)
        return call(x, training=training, ordering_index=ordering_index)

    model.call = counted
    config = config_lib.TrainConfig(batch_size=4)
    evaluate = metrics_lib.arm_evaluation(config, model, SHAPE, heads=None)
    values = evaluate("test", tf.data.Dataset.from_tensor_slices(_all_images()[:8]), None, 0)
    assert sorted(calls) == list(range(model.num_orderings))  # one trace, each ordering once
    model.call = call
    expected = -_chain_log_prob(model, 0, _all_images()[:8]) / math.log(2) / 9  # the oracle
    assert values["bpd"] == values["bpd_ordering_0"]
    np.testing.assert_allclose(values["bpd"], np.mean(expected), rtol=1e-5)
