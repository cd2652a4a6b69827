"""Tests for tfps/sampling/inpainting.py: inpainting in the ordering with the most evidence.

The fill is checked against an independent eager ancestral loop in the chosen ordering (the
visible variables kept), the exact conditional NLL against a brute-force sum over the occluded
values of a 3 x 3 binary OrderedMADE's joint in that ordering, and the NLL of random masks (several
orderings in one batch, visible variables after occluded ones) against a teacher-forced chain of
the model's conditionals in each example's ordering.
"""

import functools
import itertools
import json
import os
import shutil

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from tfps.evaluation import occlusions
from tfps.models import farm_made, farm_pixelcnn
from tfps.sampling import inpainting
from tfps.sampling import noise as noise_lib
from tfps.serving import export
from tfps.train import training

import oracles
from launchers import launch, launch_here
from tiny_models import farm_config, tiny_model

SHAPE, K = (3, 3, 1), 2
FAMILY = ("tl_rows", "br_rows", "tl_cols", "br_cols")


@functools.lru_cache(maxsize=None)
def _family(arch, orderings=FAMILY):
    keras.utils.set_random_seed(1)
    if arch == "farm_pixelcnn":
        family = farm_pixelcnn.OrderedPixelCNN(
            SHAPE, K, orderings=orderings, filters=8, num_layers=1
        )
        for variable in family.trainable_variables:  # logits well above the noise
            variable.assign(variable * 3.0)
        return family
    return farm_made.OrderedMADE(SHAPE, K, orderings=orderings, hidden_units=16)


@pytest.fixture(scope="module", params=["farm_made", "farm_pixelcnn"])
def model(request):
    """Each family of orderings: a MADE (shared masks) and a Gated PixelCNN (shared kernels)."""
    return _family(request.param)


def _eager_fill(model, index, x, visible, noise):
    """The ancestral sample in ordering `index`, visible variables kept: one call per step."""
    x = x.reshape(len(x), -1).copy()
    visible, noise = visible.reshape(len(x), -1), noise.reshape(len(x), x.shape[1], -1)
    for position in model.orderings[index].permutation:
        logits = model(x.reshape((-1,) + SHAPE), ordering_index=index)[0].numpy()
        drawn = np.argmax(logits.reshape(len(x), -1, K)[:, position] + noise[:, position], -1)
        x[:, position] = np.where(visible[:, position], x[:, position], drawn)
    return x.reshape((-1,) + SHAPE)


def _band(rows, batch=4):
    """Visible everywhere but the top `rows` rows: bool `[batch, 3, 3]`."""
    visible = np.ones((batch, 3, 3), bool)
    visible[:, :rows] = False
    return visible


def test_the_fill_is_the_ancestral_sample_of_the_chosen_ordering_and_keeps_the_visible(model):
    rng = np.random.default_rng(0)
    x = rng.integers(0, K, (4,) + SHAPE).astype(np.int32)
    visible = rng.random((4, 3, 3)) < 0.5
    visible[:, 0, 0], visible[:, 2, 2] = True, False  # some of each in every example
    noise = noise_lib.gumbel_noise((4,) + SHAPE + (K,), 3).numpy()
    painter = inpainting.Inpainter(model)
    for method in ("ancestral", "fpi", "zeros"):
        filled = painter.inpaint(x, visible, noise, method)
        samples = filled.result.samples.numpy()
        np.testing.assert_array_equal(samples[..., 0][visible], x[..., 0][visible])
        for b, k in enumerate(filled.ordering_index):
            expected = _eager_fill(model, k, x[b : b + 1], visible[b : b + 1], noise[b : b + 1])
            np.testing.assert_array_equal(samples[b : b + 1], expected, err_msg=f"{method} {b}")


def test_a_top_band_is_filled_in_a_bottom_up_ordering_exactly(model):
    index, exact = inpainting.Inpainter(model).choose(_band(1))
    assert {FAMILY[i] for i in index} <= {"br_rows"} and exact.all()
    index, exact = inpainting.Inpainter(model).choose(~_band(1))  # bottom rows occluded
    assert {FAMILY[i] for i in index} == {"tl_rows"} and exact.all()
    corner = np.ones((1, 3, 3), bool)
    corner[0, 0, 0] = False  # the top-left pixel: last in br_rows and br_cols, exact in both
    index, exact = inpainting.Inpainter(model).choose(corner)
    assert FAMILY[index[0]] == "br_rows" and exact[0]
    corner[0, 2, 0] = False  # and the bottom-left: no ordering has all the evidence first
    assert not inpainting.Inpainter(model).choose(corner)[1][0]


def _log_joint(model, index, images):
    """log p(x) `[N]` (float64) of ordering `index` by its chain rule, one call per image."""
    logits = model(images, ordering_index=index)[0]
    log_probs = tf.nn.log_softmax(logits).numpy().astype(np.float64).reshape(len(images), -1, K)
    flat = images.reshape(len(images), -1)
    return np.take_along_axis(log_probs, flat[..., None], -1)[..., 0].sum(axis=1)


def test_the_exact_nll_is_the_brute_force_conditional(model):
    rng = np.random.default_rng(2)
    x = rng.integers(0, K, (3,) + SHAPE).astype(np.int32)
    visible = _band(1, batch=3)
    nll, index, exact = inpainting.Inpainter(model).nll(x, visible)
    assert exact.all()
    for b in range(3):
        completions = np.repeat(x[b : b + 1], K**3, axis=0)
        completions[:, 0, :, 0] = np.array(list(itertools.product(range(K), repeat=3)))
        log_marginal = scipy.special.logsumexp(_log_joint(model, int(index[b]), completions))
        log_conditional = _log_joint(model, int(index[b]), x[b : b + 1])[0] - log_marginal
        np.testing.assert_allclose(nll[b], -log_conditional / 3, rtol=1e-5)


# The positions 3 r + c of the 3 x 3 image in the generation order of each ordering of FAMILY, by
# hand: rows from the top left, rows from the bottom right, columns from the top left, columns from
# the bottom right.
GENERATION_ORDER = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8),
    (8, 7, 6, 5, 4, 3, 2, 1, 0),
    (0, 3, 6, 1, 4, 7, 2, 5, 8),
    (8, 5, 2, 7, 4, 1, 6, 3, 0),
)


def _chain_nll(model, index, x, visible):
    """`Inpainter.nll` of one example `[*SHAPE]` in ordering `index`, teacher-forced: walking the
    positions in generation order, at each occluded one the model's logits on the true image with
    every variable not yet generated zeroed, -log_softmax at the true value; the mean over the
    occluded variables, in nats."""
    flat, shown = x.reshape(-1), visible.reshape(-1)
    seen, total = np.zeros_like(flat), 0.0
    for position in GENERATION_ORDER[index]:
        if not shown[position]:
            logits = model(seen.reshape((1,) + SHAPE), ordering_index=int(index))[0]
            logits = logits.numpy().astype(np.float64).reshape(-1, K)[position]
            total -= scipy.special.log_softmax(logits)[flat[position]]
        seen[position] = flat[position]
    return total / np.count_nonzero(~shown)


def test_the_nll_of_a_batch_of_random_masks_is_the_teacher_forced_chain(model):
    """Random masks in one batch: several orderings chosen, most of them not exact (visible
    variables after occluded ones), each example scored in its own ordering."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, K, (6,) + SHAPE).astype(np.int32)
    visible = rng.random((6, 3, 3)) < 0.5
    visible[:, 1, 1], visible[:, 0, 2] = True, False  # some of each in every example
    painter = inpainting.Inpainter(model)
    nll, index, exact = painter.nll(x, visible)
    assert len(set(index.tolist())) >= 2 and not exact.any(), (index, exact)
    for b in range(6):
        expected = _chain_nll(model, index[b], x[b], visible[b])
        np.testing.assert_allclose(nll[b], expected, rtol=1e-5, err_msg=f"example {b}")
    forced, _, _ = painter.nll(x, visible, ordering_index=3)  # one ordering for all
    for b in range(6):
        expected = _chain_nll(model, 3, x[b], visible[b])
        np.testing.assert_allclose(forced[b], expected, rtol=1e-5, err_msg=f"example {b}")


def test_an_arm_without_orderings_inpaints_in_raster_order():
    arm = tiny_model((3, 3, 1), 3, seed=4)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (2, 3, 3, 1)).astype(np.int32)
    visible = rng.random((2, 3, 3, 1)) < 0.5
    visible[:, 0, 0, 0], visible[:, 1, 1, 0] = True, False
    noise = noise_lib.gumbel_noise((2, 3, 3, 1, 3), 6).numpy()
    filled = inpainting.Inpainter(arm).inpaint(x, visible, noise, "fpi")
    reference = oracles.ancestral_reference(arm, noise, x, visible)
    np.testing.assert_array_equal(filled.result.samples.numpy(), reference)
    assert filled.ordering_index.tolist() == [0, 0]


@pytest.mark.parametrize(
    "visible, message",
    [
        (np.ones((2, 3, 3), bool), "nothing occluded in example 0"),
        (np.stack([np.eye(3, dtype=bool), np.zeros((3, 3), bool)]), "nothing visible in example 1"),
        (np.ones((2, 4, 3), bool), r"visible must have shape \[2, 3, 3, 1\]"),
        (np.ones((2, 3, 3), np.int32), "visible must be a bool mask"),
    ],
)
def test_a_bad_mask_is_one_clear_error(model, visible, message):
    x = np.zeros((2,) + SHAPE, np.int32)
    with pytest.raises(ValueError, match=message):
        inpainting.Inpainter(model).inpaint(x, visible, np.zeros((2,) + SHAPE + (K,)), "fpi")


def test_an_ordering_index_out_of_range_is_one_clear_error(model):
    with pytest.raises(ValueError, match=r"ordering_index must be in \[0, 4\), got 4"):
        inpainting.Inpainter(model).nll(np.zeros((4,) + SHAPE, np.int32), _band(1), 4)


# ----------------------------------------------------------------------------- launch.inpaint


@pytest.fixture(scope="module")
def farm_run(tmp_path_factory):
    """A 3-step farm_made run on digits with two orderings (mixture objective): its logdir."""
    logdir = str(tmp_path_factory.mktemp("farm") / "run")
    training.train(farm_config(ordering_objective="mixture"), logdir)
    return logdir


def test_the_launcher_inpaints_test_images_and_writes_pictures_and_a_table(farm_run, tmp_path):
    out = tmp_path / "out"
    result = launch("launch.inpaint", f"--model={farm_run}", "--occlusion=best",
                    "--num_images=3", "--num_masks=2", f"--output_dir={out}",
                    f"--logdir={tmp_path / 'tb'}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| L2 per occluded pixel |" in result.stdout
    for suffix in ("png", "md", "json"):
        assert (out / f"inpaint_best.{suffix}").exists(), suffix
    with open(out / "inpaint_best.json") as f:
        scores = json.load(f)
    assert len(scores["rectangles"]) == 2 and all(r[:2] == [0, 0] for r in scores["rectangles"])
    assert 0 <= scores["l2"] <= 1 and scores["nll"] > 0 and scores["arm_calls"] >= 1
    assert os.listdir(tmp_path / "tb" / "inpaint_best")


def test_the_launcher_names_a_bad_occlusion_and_writes_nothing(farm_run, tmp_path):
    result = launch_here("launch.inpaint", f"--model={farm_run}", "--occlusion=0,0,9,2",
                         f"--output_dir={tmp_path / 'out'}")  # fmt: skip
    assert result.returncode != 0 and "not a rectangle inside the 8x8 image" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_the_table_launcher_lays_out_the_scores_of_each_case_per_run(farm_run, tmp_path):
    """`launch.farm_table` (FARM's Table 1 layout) on the scores `launch.inpaint` wrote; a case
    not scored, or scored with other flags, is one clear error."""
    run = tmp_path / "k2_mixture"
    shutil.copytree(farm_run, run)
    for case in ("best", "worst"):
        done = launch_here("launch.inpaint", f"--model={run}", f"--occlusion={case}",
                           "--num_images=2", "--num_masks=1")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "table"
    done = launch_here("launch.farm_table", f"--models={run}", "--cases=best,worst",
                       f"--output={out}")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert (row["run"], row["k"], row["objective"]) == ("k2_mixture", 2, "mixture")
    assert row["mixture_bpd"] > 0 and set(row["cases"]) == {"best", "worst"}
    with open(run / "inpaint" / "inpaint_worst.json") as f:
        assert row["cases"]["worst"]["nll"] == json.load(f)["nll"]
    assert "1 masks x 2 test images per case" in (tmp_path / "table.md").read_text()
    for flags, message in [
        (["--cases=best,average"], "no scores of case 'average'; run python -m launch.inpaint"),
        (["--cases=best,worst", f"--models={run},{farm_run}"], "no scores of case 'best'"),
    ]:
        done = launch_here("launch.farm_table", f"--models={run}", f"--output={out}_bad", *flags)
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    launch_here("launch.inpaint", f"--model={run}", "--occlusion=best", "--num_images=3")
    done = launch_here("launch.farm_table", f"--models={run}", "--cases=best,worst",
                       f"--output={out}_bad")  # fmt: skip
    assert done.returncode != 0 and "the other cases with" in done.stderr


def test_an_explicit_rectangle_scores_one_mask(farm_run):
    model, _ = training.load_trained(farm_run)
    images = np.random.default_rng(0).integers(0, 17, (2, 8, 8, 1)).astype(np.int32)
    rectangle = occlusions.parse_occlusion("0,0,8,3", 8, 8)  # the top 3 rows: exact
    assert rectangle == (0, 0, 3, 8)
    scores = occlusions.score(inpainting.Inpainter(model), images, [rectangle])
    assert scores["exact_share"] == 1.0 and scores["fills"].shape == (1, 2, 8, 8, 1)
    np.testing.assert_array_equal(scores["fills"][0, :, 3:], images[:, 3:])


def test_farms_cases_put_the_rectangles_where_they_say():
    for case, corner in (("best", (0, 0)), ("worst", None), ("average", None)):
        for y0, x0, y1, x1 in occlusions.rectangles(case, 20, 8, 8, seed=1):
            assert 2 <= y1 - y0 <= 4 and 2 <= x1 - x0 <= 4 and 0 <= y0 and y1 <= 8
            if case == "best":
                assert (y0, x0) == corner
            if case == "worst":
                assert (y1, x1) == (8, 8)
    with pytest.raises(ValueError, match="one of best, average, worst or x0,y0,x1,y1"):
        occlusions.parse_occlusion("middle", 8, 8)
    with pytest.raises(ValueError, match="covers the whole image"):
        occlusions.parse_occlusion("0,0,8,8", 8, 8)


def test_an_export_inpaints_each_example_in_its_ordering_as_the_library_does(tmp_path):
    """The `inpaint` signature of a family's export: for the noise of `seed` (as `sample` draws
    it), the library's fill in the ordering with the most evidence, the same ordering index and
    exactness flag; a mask with nothing occluded or of another shape is one error. The PixelCNN
    family in 2 orderings (the serving module reads only `orderings` and `ordering_index`, as for
    a MADE; each ordering traces its own loops)."""
    model = _family("farm_pixelcnn", FAMILY[:2])
    path = export.export_model(model, str(tmp_path / "family"), incremental=False)
    inpaint = tf.saved_model.load(path).signatures["inpaint"]
    rng = np.random.default_rng(5)
    x = rng.integers(0, K, (6,) + SHAPE).astype(np.int32)
    visible = np.stack([_band(1, 1)[0], ~_band(1, 1)[0], _band(2, 1)[0], ~_band(2, 1)[0]] * 2)[:6]
    visible[4:] = rng.random((2, 3, 3)) < 0.5
    visible[4:, 1, 1], visible[4:, 0, 0] = True, False
    visible = visible[..., None]  # [B, H, W, C]
    noise = noise_lib.gumbel_noise((6,) + SHAPE + (K,), 7)
    painter = inpainting.Inpainter(model)
    for method in ("ancestral", "fpi"):
        out = inpaint(seed=tf.constant([0, 7], tf.int64), x=tf.constant(x),
                      visible=tf.constant(visible), method=tf.constant(method))  # fmt: skip
        filled = painter.inpaint(x, visible, noise, method)
        np.testing.assert_array_equal(out["samples"], filled.result.samples, err_msg=method)
        np.testing.assert_array_equal(out["ordering_index"], filled.ordering_index)
        np.testing.assert_array_equal(out["exact"], filled.exact)
        assert int(out["arm_calls"]) == int(filled.result.arm_calls)
        np.testing.assert_array_equal(np.where(visible, out["samples"], 0), np.where(visible, x, 0))
    assert len(set(filled.ordering_index.tolist())) >= 2  # several orderings in one batch
    bad = visible.copy()
    bad[1] = True
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="leaves nothing occluded in example 1"
    ):
        inpaint(seed=tf.constant([0, 7], tf.int64), x=tf.constant(x), visible=tf.constant(bad),
                method=tf.constant("fpi"))  # fmt: skip
    with pytest.raises(tf.errors.InvalidArgumentError, match="visible must have the shape of x"):
        inpaint(seed=tf.constant([0, 7], tf.int64), x=tf.constant(x),
                visible=tf.constant(visible[:2]), method=tf.constant("fpi"))  # fmt: skip
