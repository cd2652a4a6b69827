"""Tests for tfps/evaluation/occlusions.py `score` (FARM's two NLLs, its L2) and the two NLL
columns of launch/farm_table.py.

The oracle is FARM's `fill_occlusion` (esfrankel/farm, inference.py) written again as an eager
numpy loop over one image: in the ordering with the most evidence, each occluded variable in turn
is scored (numpy log-softmax of the model's logits of the image filled so far, at the true value)
and then drawn by Gumbel-max from the same logits.
"""

import json

import keras
import numpy as np
import pytest

from tfps.evaluation import occlusions
from tfps.models import farm_made
from tfps.sampling import inpainting
from tfps.sampling import noise as noise_lib

from launchers import launch_here

SHAPE, K = (4, 4, 1), 2
FAMILY = ("tl_rows", "br_rows")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(5)
    model = farm_made.OrderedMADE(SHAPE, K, orderings=FAMILY, hidden_units=24)
    for w in model.weights:
        w.assign(w * 3.0)  # logits well away from uniform
    return model


def _most_evidence(model, visible):
    """The ordering with the most (visible, occluded) pairs whose visible variable comes first,
    the first of equals, by counting."""
    flat = visible.reshape(-1)
    counts = []
    for ordering in model.orderings:
        rank = ordering.inverse
        counts.append(sum(int((rank[flat] < r).sum()) for r in rank[~flat]))
    return int(np.argmax(counts))


def _fill_occlusion(model, image, visible, noise):
    """`(fill, NLL per occluded variable)` of one image as FARM's `fill_occlusion` computes them
    (visible bool of the image's shape, noise `[*SHAPE, K]`)."""
    d, index = image.size, _most_evidence(model, visible)
    truth, shown = image.reshape(d), visible.reshape(d)
    x, eps, nll = np.where(shown, truth, 0), noise.reshape(d, K), []
    for j in model.orderings[index].permutation:
        if shown[j]:
            continue
        logits = model(x.reshape((1,) + SHAPE), ordering_index=index)[0].numpy().reshape(d, K)[j]
        wide = logits.astype(np.float64)
        log_p = wide - wide.max() - np.log(np.exp(wide - wide.max()).sum())
        nll.append(-log_p[truth[j]])  # the true value, given the sampled earlier ones
        x[j] = np.argmax(logits + eps[j])  # then the draw (float32, as the samplers add)
    return x.reshape(SHAPE), float(np.mean(nll))


def test_farms_nll_scores_the_true_pixels_given_the_sampled_fill(model):
    rng = np.random.default_rng(0)
    images = rng.integers(0, K, (6,) + SHAPE).astype(np.int32)
    rectangles = [(0, 0, 2, 2), (1, 1, 3, 4), (2, 0, 4, 2), (0, 2, 3, 4)]
    scores = occlusions.score(inpainting.Inpainter(model), images, rectangles, "fpi", seed=7)
    fills, nll, l2 = [], [], []
    for r, (y0, x0, y1, x1) in enumerate(rectangles):
        visible = np.ones(SHAPE, bool)
        visible[y0:y1, x0:x1] = False
        noise = noise_lib.gumbel_noise(images.shape + (K,), 7 + r).numpy()
        for image, eps in zip(images, noise):
            fill, value = _fill_occlusion(model, image, visible, eps)
            fills.append(fill)
            nll.append(value)
            l2.append(((fill - image)[~visible] ** 2).mean())  # K - 1 = 1
    np.testing.assert_array_equal(scores["fills"].reshape((-1,) + SHAPE), np.stack(fills))
    assert scores["nll_given_fill"] == pytest.approx(np.mean(nll), rel=1e-5)
    assert scores["l2"] == pytest.approx(np.mean(l2), rel=1e-9)
    # The teacher-forced NLL (the true earlier values) is another number.
    assert abs(scores["nll"] - scores["nll_given_fill"]) > 1e-3


def _scored_run(path, k_orderings, scores):
    """A run directory as launch.farm_table reads it: config, metrics, and each case's scores."""
    (path / "inpaint").mkdir(parents=True)
    model = {"arch": "farm_made", "event_shape": [4, 4, 1], "orderings": k_orderings}
    config = {"train": {"ordering_objective": "mc"}, "model": model, "dataset": {}}
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.json").write_text(json.dumps({"test_bpd": 0.5, "test_mixture_bpd": 0.4}))
    flags = {"num_images": 2, "num_masks": 1, "method": "fpi", "seed": 0}
    for case, values in scores.items():
        record = {**values, "exact_share": 0.0, "flags": flags}
        (path / "inpaint" / f"inpaint_{case}.json").write_text(json.dumps(record))


def test_the_table_shows_both_nlls_and_counts_the_orderings_the_model_records(tmp_path):
    run = tmp_path / "k3"
    recorded = [{"name": None, "permutation": np.random.default_rng(i).permutation(16).tolist()}
                for i in range(3)]  # fmt: skip
    values = {"l2": 0.125, "nll": 0.25, "nll_given_fill": 0.75}
    _scored_run(run, recorded, {"best": values})
    out = tmp_path / "table"
    done = launch_here("launch.farm_table", f"--models={run}", "--cases=best", f"--output={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert row["k"] == 3 and row["cases"]["best"]["nll_given_fill"] == 0.75
    text = (tmp_path / "table.md").read_text()
    assert "| best: L2 / NLL / FARM NLL |" in text and "| 0.1250 / 0.2500 / 0.7500 |" in text
    assert "given the sampled earlier pixels of the fill" in text
    old = tmp_path / "old"
    _scored_run(old, recorded[:1], {"best": {"l2": 0.1, "nll": 0.2}})  # before nll_given_fill
    done = launch_here("launch.farm_table", f"--models={old}", "--cases=best", f"--output={out}")
    assert done.returncode != 0 and "has no nll_given_fill" in done.stderr
