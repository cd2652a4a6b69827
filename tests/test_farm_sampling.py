"""Tests for tfps/sampling/farm_parallel.py (FARM's approximate parallel sampling) and
tfps/evaluation/frechet.py (the offline sample-quality measure).

With one ordering, parallel sampling is ancestral sampling in that ordering (checked against an
eager loop, one call per variable); with k orderings every round draws each proposed variable
from its ordering's conditional given the image at the start of the round (checked by replaying
the rounds). The Frechet distance is checked against its closed form for Gaussians.
"""

import json
import re

import keras
import numpy as np
import pytest

from tfps.data import builtin, checks, sources
from tfps.evaluation import frechet
from tfps.models import farm_made, made
from tfps.sampling import farm_parallel
from tfps.sampling import noise as noise_lib
from tfps.train import training

import oracles
from launchers import launch, launch_here
from tiny_models import farm_config

SHAPE, K = (3, 4, 1), 3
FAMILY = ("tl_rows", "br_rows", "tl_cols", "br_cols")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(2)
    return farm_made.OrderedMADE(SHAPE, K, orderings=FAMILY, hidden_units=16)


def _noise(batch, seed):
    return noise_lib.gumbel_noise((batch,) + SHAPE + (K,), seed).numpy()


def _replay(model, noise, indices):
    """The rounds of parallel sampling, one eager model call per example, ordering and round:
    (x, rounds, evaluations), evaluations counting per round the orderings that proposed a
    variable in some example (the calls on the whole batch)."""
    batch, d = len(noise), int(np.prod(SHAPE))
    flat_noise = noise.reshape(batch, d, K)
    x, filled, rounds = np.zeros((batch, d), np.int32), np.zeros((batch, d), bool), 0
    evaluations = 0
    while not filled.all():
        rounds += 1
        start, taken, proposing = x.copy(), set(), set()
        for b in range(batch):
            taken_b = set()
            for j in indices:
                position = next(
                    (p for p in model.orderings[j].permutation if not filled[b, p]), None
                )
                if position is None or position in taken_b:
                    continue
                logits = model(start[b : b + 1].reshape((1,) + SHAPE), ordering_index=j)[0]
                scores = logits.numpy().reshape(d, K)[position] + flat_noise[b, position]
                x[b, position] = int(np.argmax(scores))
                taken_b.add(position)
                proposing.add(j)
            taken |= {(b, p) for p in taken_b}
        for b, p in taken:
            filled[b, p] = True
        evaluations += len(proposing)
    return x.reshape((batch,) + SHAPE), rounds, evaluations


@pytest.mark.parametrize("index", [0, 1, 3])
def test_one_ordering_is_ancestral_sampling_in_that_ordering(model, index):
    noise = _noise(4, index)
    got = farm_parallel.parallel_sample(model, noise, [index])
    expected, rounds, evaluations = _replay(model, noise, [index])
    np.testing.assert_array_equal(got.samples, expected)
    d = int(np.prod(SHAPE))
    assert got.exact and got.rounds == rounds == d and got.evaluations == evaluations == d


@pytest.mark.parametrize("k", [2, 4])
def test_k_orderings_draw_each_round_from_the_start_of_the_round(model, k):
    noise = _noise(5, 10 + k)
    got = farm_parallel.parallel_sample(model, noise, k)
    expected, rounds, evaluations = _replay(model, noise, list(range(k)))
    np.testing.assert_array_equal(got.samples, expected)
    assert not got.exact and got.rounds == rounds and got.orderings == list(range(k))
    assert got.evaluations == evaluations
    d = int(np.prod(SHAPE))
    # Opposite corners meet in the middle: d / 2 rounds for tl_rows and br_rows, both proposing
    # in each; 4 orderings need at least d / 4.
    if k == 2:
        assert got.rounds == d // 2 and got.evaluations == d
    assert d // k <= got.rounds < d


@pytest.mark.parametrize("k", [1, 2])
def test_the_xla_compiled_loop_samples_as_the_eager_replay(model, k):
    noise = _noise(3, 20 + k)
    got = farm_parallel.parallel_sample(model, noise, k, jit_compile=True)
    expected, rounds, evaluations = _replay(model, noise, list(range(k)))
    np.testing.assert_array_equal(got.samples, expected)
    assert (got.rounds, got.evaluations, got.exact) == (rounds, evaluations, k == 1)


class _Counting:
    """A family that counts its Python calls: a compiled loop calls it only while tracing."""

    def __init__(self, model):
        self.inner, self.calls = model, 0
        self.event_shape, self.num_categories = model.event_shape, model.num_categories
        self.orderings = model.orderings

    def __call__(self, x, training=False, ordering_index=0):
        self.calls += 1
        return self.inner(x, training=training, ordering_index=ordering_index)


def test_the_loop_is_traced_once_per_model_and_configuration(model):
    counting = _Counting(model)
    first = farm_parallel.parallel_sample(counting, _noise(2, 0), 2)
    traced = counting.calls
    assert traced == 2  # one call per ordering in the traced round, not per round
    again = farm_parallel.parallel_sample(counting, _noise(5, 1), 2)  # another batch size
    assert counting.calls == traced and again.rounds == first.rounds
    farm_parallel.parallel_sample(counting, _noise(2, 0), 3)  # another configuration
    assert counting.calls == traced + 3


def test_parallel_sampling_refuses_what_it_cannot_sample(model):
    with pytest.raises(ValueError, match="has no `orderings`"):
        farm_parallel.parallel_sample(made.MADE(SHAPE, K, hidden_units=8), _noise(1, 0))
    for bad, match in ((0, r"k must be in \[1, 4\]"), (5, r"k must be in \[1, 4\]"),
                       ([1, 1], "distinct"),
                       ([0, 7], r"ordering_index must be in \[0, 4\), got 7")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            farm_parallel.parallel_sample(model, _noise(1, 0), bad)
    with pytest.raises(ValueError, match="noise must have shape"):
        farm_parallel.parallel_sample(model, np.zeros((1, 3, 3, 1, K)))
    noise = _noise(1, 0)
    noise[0, 1, 1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        farm_parallel.parallel_sample(model, noise)


def test_the_frechet_distance_of_gaussians_is_its_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2.0 + np.array([1.0, 0.0, -2.0])
    # ||mu_a - mu_b||^2 + tr(I + 4 I - 2 (4 I)^(1/2)) = 5 + 3 (1 + 4 - 4) = 8.
    assert frechet.frechet_distance(a, b) == pytest.approx(8.0, rel=0.03)
    assert frechet.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Sets of a few correlated features (a rank-deficient covariance): the numpy formula.
    c, e = rng.normal(size=(6, 8)) @ rng.normal(size=(8, 8)), rng.normal(size=(40, 8))
    assert frechet.frechet_distance(c, e) == pytest.approx(oracles.frechet_distance(c, e), rel=1e-6)
    with pytest.raises(ValueError, match="two feature sets"):
        frechet.frechet_distance(a[:, :2], b)


def test_a_digit_classifier_learns_the_embedded_digits_and_its_features_tell_sets_apart():
    name = "digits"
    train, info = builtin.load_numpy(name, "train")
    test, _ = builtin.load_numpy(name, "test")
    labels = builtin.labels(name, "train")
    classifier = frechet.train_classifier(train, labels, info.num_categories, steps=150)
    assert frechet.accuracy(classifier, test, builtin.labels(name, "test")) > 0.8
    real = frechet.features(classifier, test[:150])
    held_out = frechet.features(classifier, test[150:300])
    noise = np.random.default_rng(0).integers(0, info.num_categories, (150,) + info.image_shape)
    floor = frechet.frechet_distance(real, held_out)
    assert frechet.frechet_distance(real, frechet.features(classifier, noise)) > 5 * floor
    with pytest.raises(ValueError, match="labels are embedded"):
        builtin.labels("mnist", "test")
    with pytest.raises(ValueError, match="need images"):
        frechet.train_classifier(train[:3], labels[:2], info.num_categories)


def test_the_quality_column_takes_the_labels_of_a_users_npz(tmp_path):
    """`frechet.scorer` of `sources.labelled`: an .npz with `train_labels` / `test_labels` (the
    embedded digits written out): a classifier of those labels, a distance per sample set;
    without labels, at other levels or with bad labels: no column, or one DataError naming the
    array."""
    arrays = {}
    for split in ("train", "validation", "test"):
        arrays[split] = builtin.load_numpy("digits", split)[0]
        arrays[f"{split}_labels"] = builtin.labels("digits", split)
    path = str(tmp_path / "mine.npz")
    np.savez(path, **arrays)
    score, header = frechet.scorer(sources.labelled(path, num_categories=17), steps=150)
    assert "mine.npz-label classifier (150 steps" in header and "validation images" in header
    test = arrays["test"]
    noise = np.random.default_rng(0).integers(0, 17, (100,) + test.shape[1:])
    assert score(noise) > 3 * score(test[:100])
    assert frechet.scorer(sources.labelled(path, 8), steps=5)[0] is None  # other levels: none
    unlabelled = str(tmp_path / "plain.npz")
    np.savez(unlabelled, train=arrays["train"], test=arrays["test"])
    note = frechet.scorer(sources.labelled(unlabelled, 17), 5)[1]
    assert "has no train_labels and test_labels" in note
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, train=arrays["train"], train_labels=arrays["train_labels"][:-1])
    with pytest.raises(checks.DataError, match="train_labels must hold one integer class"):
        sources.npz_labels(bad)


@pytest.fixture(scope="module")
def farm_run(tmp_path_factory):
    """A 3-step farm_made run on digits with the orderings tl_rows and br_rows."""
    logdir = str(tmp_path_factory.mktemp("farm") / "run")
    training.train(farm_config(), logdir)
    return logdir


def test_the_launcher_tables_exact_and_parallel_sampling_from_a_shell(farm_run, tmp_path):
    out = tmp_path / "table"
    result = launch("launch.farm_sampling", f"--model={farm_run}", "--num_samples=6",
                    "--classifier_steps=20", "--skews=8,2", "--best_of=2",
                    f"--output_dir={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "farm_sampling.json") as f:
        table = json.load(f)
    # Every row timed plain and XLA-compiled (the same samples), the fastest of 2 runs.
    for row in table["rows"]:
        assert row["seconds"] > 0 and row["seconds_xla"] > 0 and row["xla_same_samples"], row
    assert "fastest of 2 runs" in table["quality"] and "| seconds (XLA) |" in result.stdout
    names = [row["name"] for row in table["rows"]]
    assert names[:4] == ["ancestral", "fpi (predictive sampling)",
                         "FARM parallel, k=1 (= ancestral)", "FARM parallel, k=2"]  # fmt: skip
    assert [n.split(" (")[0] for n in names[4:]] == [
        "diagonal schedule, skew 8",
        "diagonal schedule, skew 2",
    ]
    rows = dict(zip(["ancestral", "fpi", "k1", "k2", "skew8", "skew2"], table["rows"]))
    assert rows["skew8"]["exact"] and rows["skew8"]["rounds"] == 8 * 7 + 8  # raster order
    assert rows["skew2"]["rounds"] == 2 * 7 + 8
    rows = {row["name"]: row for row in table["rows"]}
    d = 64  # 8 x 8 digits
    assert (
        rows["ancestral"]["arm_calls"] == rows["FARM parallel, k=1 (= ancestral)"]["arm_calls"] == d
    )
    assert rows["FARM parallel, k=2"]["rounds"] == d // 2
    assert [row["exact"] for row in table["rows"][:4]] == [True, True, True, False]
    # The Frechet column, recomputed for the exact rows: the ancestral sample in ordering 0 for
    # seed 0 (the eager oracle) in the features of the launcher's classifier (digits, 20 steps,
    # seed 0), by numpy; the approximate rows draw other samples, at a positive distance.
    model, _ = training.load_trained(farm_run)
    samples = oracles.ancestral_in_ordering(
        model, 0, noise_lib.gumbel_noise((6, 8, 8, 1, 17), 0).numpy()
    )
    train, _ = builtin.load_numpy("digits", "train")
    classifier = frechet.train_classifier(train, builtin.labels("digits", "train"), 17, steps=20)
    reference = frechet.features(classifier, builtin.load_numpy("digits", "test")[0])
    expected = oracles.frechet_distance(reference, frechet.features(classifier, samples))
    for row in table["rows"]:
        if row["exact"]:
            assert row["frechet"] == pytest.approx(expected, rel=1e-3), row["name"]
        else:
            assert np.isfinite(row["frechet"]) and row["frechet"] > 0.0, row["name"]
    assert "NO (approximate)" in (out / "farm_sampling.md").read_text()
    assert (out / "farm_sampling.png").stat().st_size > 0
    assert "test accuracy" in table["quality"]


def test_the_launcher_leaves_out_the_rows_and_the_xla_column_it_is_told_to(farm_run, tmp_path):
    out = tmp_path / "table"
    done = launch_here("launch.farm_sampling", f"--model={farm_run}", "--num_samples=2",
                       "--methods=fpi", "--ks=none", "--skews=none", "--xla=false",
                       "--best_of=1", "--classifier_steps=5", f"--output_dir={out}")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = json.loads((out / "farm_sampling.json").read_text())["rows"]
    assert row["name"] == "fpi (predictive sampling)" and "seconds_xla" not in row
    assert "| fpi (predictive sampling) | yes |" in (out / "farm_sampling.md").read_text()


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--ks=1,x",), "--ks must be numbers of orderings"),
        (("--ks=3",), r"k must be in \[1, 2\]"),
        (("--methods=nope",), "unknown methods"),
        (("--skews=0",), r"--skews must be in \[1, 8\] \(the width read\)"),
        (("--skews=x",), "--skews must be positive integers or none"),
    ],  # fmt: skip
)
def test_bad_launcher_flags_are_one_clear_error(farm_run, tmp_path, flags, message):
    result = launch_here("launch.farm_sampling", f"--model={farm_run}",
                         f"--output_dir={tmp_path / 'out'}", *flags)  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr[-2000:]
    assert not (tmp_path / "out").exists()
