"""Bad input to every sampling entry of the library and of a SavedModel, traced and under XLA.

Each case must be refused with one error naming the problem (ValueError in the library,
InvalidArgumentError from a SavedModel signature), and none may return a sample: NaN and
infinite noise (which would decide an argmax arbitrarily, and differently under XLA), a wrong
dtype or rank, an empty batch, an unknown method, values outside [0, K), a bad count or seed.
"""

import glob
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.models import farm_made, made
from tfps.sampling import events, incremental, inpainting, predictive, prefix
from tfps.serving import contract_checks, export, exported_sampler
from tfps.train import ordering_objectives, rundir

from launchers import REPO, launch_here
from tiny_models import tiny_model

SHAPE, K = (2, 2, 1), 3


def _noise(value=None, shape=(2,) + SHAPE + (K,)):
    noise = np.zeros(shape, np.float32)
    if value is not None:
        noise[1, 0, 1, 0, 2] = value
    return noise


# (what, call(sampler) -> anything, the message): every entry of a library sampler.
LIBRARY_CASES = [
    ("nan noise", lambda s: s.sample(_noise(np.nan)), r"noise must be finite: found 1 NaN"),
    ("+inf noise", lambda s: s.sample(_noise(np.inf), "ancestral"), r"first at index \[1, 0, 1"),
    ("-inf noise", lambda s: s.sample_scheduled(_noise(-np.inf), "fpi", 1), "must be finite"),
    (
        "nan noise with evidence",
        lambda s: s.sample(
            _noise(np.nan), "fpi", np.zeros((2,) + SHAPE, np.int32), np.zeros((2,) + SHAPE, bool)
        ),
        "must be finite",
    ),  # fmt: skip
    ("int noise", lambda s: s.sample(np.zeros((2,) + SHAPE + (K,), np.int32)), "float tensor"),
    ("rank", lambda s: s.sample(np.zeros((2, 2, 2, K), np.float32)), "noise must have shape"),
    ("empty batch", lambda s: s.sample(_noise(shape=(0,) + SHAPE + (K,))), "at least one"),
    ("unknown method", lambda s: s.sample(_noise(), "magic"), "unknown sampling method 'magic'"),
    (
        "evidence out of range",
        lambda s: s.sample(
            _noise(), "fpi", np.full((2,) + SHAPE, K, np.int32), np.ones((2,) + SHAPE, bool)
        ),
        r"evidence values must lie in \[0, 3\)",
    ),  # fmt: skip
    ("batch size 0", lambda s: s.sample_from_seed(0, 0), "batch_size must be >= 1"),
    ("slots 0", lambda s: s.sample_scheduled(_noise(), "fpi", 0), "slots must be an integer >= 1"),
]


def test_a_bool_seed_is_refused(sampler):
    with pytest.raises(TypeError, match="seed must be an int or a pair of ints, got the bool"):
        sampler.sample_from_seed(True, 2)


@pytest.fixture(scope="module", params=[False, True], ids=["graph", "xla"])
def sampler(request):
    return predictive.sampler_for_model(tiny_model(SHAPE, K), jit_compile=request.param)


@pytest.mark.parametrize("what, call, message", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_the_library_refuses_bad_input_with_one_error(sampler, what, call, message):
    with pytest.raises(ValueError, match=message):
        call(sampler)


def test_finite_noise_of_any_size_samples(sampler):
    huge = _noise(1e30)  # finite: a valid, if extreme, Gumbel draw
    result = sampler.sample(huge, "fpi")
    np.testing.assert_array_equal(result.samples, sampler.sample(huge, "ancestral").samples)
    assert int(result.samples[1, 0, 1, 0]) == 2  # the huge noise wins its argmax


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """`{mode: ExportedSampler}`: a tiny model exported with traced and with XLA-compiled loops
    (exported lazily, once each)."""
    built = {}

    def get(mode):
        if mode not in built:
            base = str(tmp_path_factory.mktemp("bad_input") / mode)
            path = export.export_model(
                tiny_model(SHAPE, K), base, incremental=False, jit_compile=mode == "xla"
            )
            built[mode] = exported_sampler.load_exported(path)
        return built[mode]

    return get


EXTRA = {
    "sample_with_noise": (),
    "sample_with_evidence": ("evidence", "evidence_mask"),
    "sample_many_with_evidence": ("evidence", "evidence_mask", "slots"),
}
# Every signature that takes noise, with NaN; both infinities on one; one under XLA (the checks
# run in the signature's graph, before the compiled loop). Each first call of a signature builds
# its graph (~5 s): the cases are chosen, not crossed.
SIGNATURE_CASES = [
    ("graph", "sample_with_noise", np.nan),
    ("graph", "sample_with_noise", np.inf),
    ("graph", "sample_with_noise", -np.inf),
    ("graph", "sample_with_evidence", np.nan),
    ("graph", "sample_many_with_evidence", np.nan),
    ("xla", "sample_with_noise", np.nan),
]


@pytest.mark.parametrize(
    "mode, signature, value", SIGNATURE_CASES, ids=[f"{m}-{s}-{v}" for m, s, v in SIGNATURE_CASES]
)
def test_every_signature_refuses_non_finite_noise(exports, mode, signature, value):
    served = exports(mode)
    image = (2,) + served.event_shape
    noise = _noise(value, image + (served.num_categories,))
    values = {
        "evidence": tf.zeros(image, tf.int32),
        "evidence_mask": tf.zeros(image, tf.bool),
        "slots": tf.constant(1),
    }
    inputs = {"noise": tf.constant(noise), "method": tf.constant("fpi")}
    inputs.update({name: values[name] for name in EXTRA[signature]})
    with pytest.raises(tf.errors.InvalidArgumentError, match="noise must be finite: found 1 NaN"):
        served.signatures[signature](**inputs)
    # The library entry of the export refuses it before the graph sees it.
    with pytest.raises(ValueError, match="noise must be finite"):
        served.sample(noise, "fpi")


class _NeverExact(incremental.WindowArm):
    """An incremental ARM that breaks its contract: it never makes the needed position exact."""

    def exact_positions(self, cache):
        return tf.zeros_like(super().exact_positions(cache))


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_a_loop_that_ends_before_every_variable_is_accepted_is_an_error(jit_compile):
    model = tiny_model((3, 2, 1), 2)
    arm = predictive.arm_from_model(model)
    broken = predictive.PredictiveSampler(
        arm, (3, 2, 1), 2, jit_compile=jit_compile, incremental_arm=_NeverExact(model, window=1)
    )
    noise = _noise(shape=(2, 3, 2, 1, 2))
    for call in (lambda: broken.sample(noise, "fpi"), lambda: broken.sample_scheduled(noise)):
        with pytest.raises(predictive.IncompleteSampleError, match="12 variables never accepted"):
            call()

    # The same check in a SavedModel signature's graph: an InvalidArgumentError.
    @tf.function
    def check(accepted_at):
        with tf.control_dependencies([contract_checks.require_complete(accepted_at)]):
            return tf.identity(accepted_at)

    with pytest.raises(tf.errors.InvalidArgumentError, match="1 variables never accepted"):
        check(tf.constant([[1, 2, 0]]))
    check(tf.constant([[1, 2, 3]]))  # complete: passes


def _damaged_copies(root):
    """Copies of the shipped export: saved_model.pb cut in half, variables removed, the variables'
    data cut to a third."""
    shipped = os.path.join(REPO, "exported", "digits", "1")
    copies = {}
    for name in ("truncated_graph", "no_variables", "truncated_variables"):
        copies[name] = str(root / name)
        shutil.copytree(shipped, copies[name])
    graph = os.path.join(copies["truncated_graph"], "saved_model.pb")
    with open(graph, "rb") as f:
        data = f.read()
    with open(graph, "wb") as f:
        f.write(data[: len(data) // 2])
    shutil.rmtree(os.path.join(copies["no_variables"], "variables"))
    [values] = glob.glob(os.path.join(copies["truncated_variables"], "variables", "*.data-*"))
    with open(values, "rb") as f:
        data = f.read()
    with open(values, "wb") as f:
        f.write(data[: len(data) // 3])
    return copies


def test_a_damaged_export_is_one_clear_error_from_the_library_and_the_launcher(tmp_path):
    for name, path in _damaged_copies(tmp_path).items():
        with pytest.raises(
            exported_sampler.ExportError, match="a corrupt or incomplete SavedModel"
        ):
            exported_sampler.load_exported(path)
        result = launch_here("launch.sample", f"--model={path}", f"--output_dir={tmp_path / 'out'}")
        assert result.returncode != 0 and "Traceback" not in result.stderr, name
        assert f"{path}: a corrupt or incomplete SavedModel" in result.stderr, name
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ['{"step": 20, "test_bp', "[1, 2]"])
def test_a_corrupt_metrics_file_is_one_clear_error_when_exporting(tmp_path, text):
    logdir = tmp_path / "run"
    logdir.mkdir()
    (logdir / "metrics.json").write_text(text)
    with pytest.raises(rundir.CheckpointError, match=r"metrics.json: not a valid metrics file"):
        rundir.training_metadata({"step": 20}, str(logdir))
    (logdir / "metrics.json").unlink()  # no metrics file: an export without the measured bpd
    assert rundir.training_metadata({"step": 20}, str(logdir))["test_bpd"] is None


# ------------------------------------------------------------------ inpainting, evidence, x
def _family():
    """A 2-ordering MADE family of the module's event shape and K (untrained, seeded)."""
    keras.utils.set_random_seed(1)
    return farm_made.OrderedMADE(SHAPE, K, orderings=("tl_rows", "br_rows"), hidden_units=8)


@pytest.fixture(scope="module")
def painter():
    return inpainting.Inpainter(_family())


def _x(value=None, dtype=np.int32, shape=(2,) + SHAPE):
    """x of ones `[2, 2, 2, 1]` (or `shape`), `value` at [1, 0, 1, 0] (occluded)."""
    x = np.ones(shape, dtype)
    if value is not None:
        x[1, 0, 1, 0] = value
    return x


_VISIBLE = np.array([[[True, False], [True, False]]] * 2)  # [2, 2, 2]: the left column visible
_INT32 = r"expected to be a int32 tensor but is a (float|int64) tensor"
_FLOAT = "x must hold integer category indices, got dtype float"
# (what, x, the library's message (ValueError), the export's (InvalidArgumentError)): x of
# `Inpainter.inpaint` and `nll`, and of the export's `inpaint` signature.
X_CASES = [
    ("x = K", _x(K), r"x values must lie in \[0, 3\), found values in \[1, 3\]", r"x values must"),
    ("x = -1", _x(-1), r"x values must lie in \[0, 3\), found values in \[-1, 1\]", r"\[0, 3\)"),
    ("float x", _x(1.5, np.float32), _FLOAT, _INT32),
    ("int64 x = 2**32", _x(2**32, np.int64), r"found values in \[1, 4294967296\]", _INT32),
    ("x shape", _x(shape=(2, 2, 1, 1)), r"x must have shape \[batch, 2, 2, 1\]", "x must have"),
]  # fmt: skip


@pytest.mark.parametrize("what, x, message, served_message", X_CASES, ids=[c[0] for c in X_CASES])
def test_inpainting_refuses_bad_x_in_the_library_and_the_export(
    painter, exports, what, x, message, served_message
):
    noise = _noise()
    with pytest.raises(ValueError, match=message):
        painter.inpaint(x, _VISIBLE, noise, "fpi")
    with pytest.raises(ValueError, match=message):
        painter.nll(x, _VISIBLE)
    visible = np.repeat(_VISIBLE[..., None], SHAPE[-1], axis=-1)[:, :, : x.shape[2]]
    with pytest.raises(tf.errors.InvalidArgumentError, match=served_message):
        exports("graph").signatures["inpaint"](
            seed=tf.constant([0, 1], tf.int64),
            x=tf.constant(x),
            visible=tf.constant(visible),
            method=tf.constant("fpi"),
        )


# (what, noise, messages of the library (ValueError), of `ExportedSampler.sample` with evidence
# (ValueError: the library's check), of the export's `sample_with_evidence` signature
# (InvalidArgumentError)): the noise of `Inpainter.inpaint` and of sampling with evidence.
NOISE_CASES = [
    ("nan noise", _noise(np.nan), r"noise must be finite: found 1 NaN", None, "found 1 NaN"),
    ("-inf noise", _noise(-np.inf), r"first at index \[1, 0, 1, 0, 2\]", None, "must be finite"),
    ("int noise", _noise().astype(np.int32), "noise must be a float tensor", None,
     "expected to be a float tensor but is a int32 tensor"),
    ("noise count", _noise(shape=(1,) + SHAPE + (K,)), "noise has 1 examples, x 2",
     r"evidence_mask must have shape \[1, 2, 2, 1\]", "evidence must have the batch size of noise"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, noise, message, exported_message, served", NOISE_CASES, ids=[c[0] for c in NOISE_CASES]
)
def test_inpainting_refuses_bad_noise_in_the_library_and_the_export(
    painter, exports, what, noise, message, exported_message, served
):
    with pytest.raises(ValueError, match=message):
        painter.inpaint(_x(), _VISIBLE, noise, "fpi")
    loaded = exports("graph")
    evidence, mask = _x(), np.repeat(_VISIBLE[..., None], SHAPE[-1], axis=-1)
    with pytest.raises(ValueError, match=exported_message or message):
        loaded.sample(noise, "fpi", evidence, mask)
    with pytest.raises(tf.errors.InvalidArgumentError, match=served):
        loaded.signatures["sample_with_evidence"](
            noise=tf.constant(noise),
            evidence=tf.constant(evidence),
            evidence_mask=tf.constant(mask),
            method=tf.constant("fpi"),
        )


def test_the_export_refuses_float_evidence_and_x_as_the_library_does(sampler, exports):
    """A cast would truncate 1.7 to 1: the library and `ExportedSampler` refuse it instead."""
    loaded, mask = exports("graph"), np.ones((2,) + SHAPE, bool)
    evidence = np.full((2,) + SHAPE, 1.7, np.float32)
    for target in (sampler, loaded):
        with pytest.raises(ValueError, match="evidence must hold integer category indices"):
            target.sample(_noise(), "fpi", evidence, mask)
    for call in (loaded.logits, loaded.log_prob):
        with pytest.raises(ValueError, match="x must hold integer category indices, got dtype"):
            call(evidence)
    with pytest.raises(ValueError, match=r"x values must lie in \[0, 3\), found values in"):
        loaded.log_prob(_x(2**32, np.int64))  # as int32 it would wrap to 0, in range


def test_an_inpainting_ordering_index_must_be_an_int_in_range(painter):
    cases = ((2, r"ordering_index must be in \[0, 2\), got 2"),
             (0.5, r"ordering_index must be an integer in \[0, 2\), got 0.5"),
             (True, r"ordering_index must be an integer in \[0, 2\), got True"))  # fmt: skip
    for index, message in cases:
        with pytest.raises(ValueError, match=message):
            painter.nll(_x(), _VISIBLE, ordering_index=index)


# ------------------------------------------------------------------------- traced callers
def test_a_traced_caller_gets_an_in_graph_check_and_an_xla_one_a_refusal(sampler):
    """Traced without XLA, the checks are in-graph asserts; an XLA-compiled caller would compile
    them away (a NaN sample returned), so it is refused when traced."""
    evidence, mask = np.full((2,) + SHAPE, K, np.int32), np.ones((2,) + SHAPE, bool)
    plain = tf.function(lambda noise: sampler.sample(noise, "fpi").samples)
    with pytest.raises(tf.errors.InvalidArgumentError, match="noise must be finite"):
        plain(tf.constant(_noise(np.nan)))
    plain_evidence = tf.function(lambda e: sampler.sample(_noise(), "fpi", e, mask).samples)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"evidence values must lie in \[0, 3\), found values in \[3, 3\]",
    ):
        plain_evidence(tf.constant(evidence))
    xla = tf.function(lambda noise: sampler.sample(noise, "fpi").samples, jit_compile=True)
    with pytest.raises(ValueError, match="noise cannot be checked inside an XLA-compiled function"):
        xla(tf.constant(_noise(np.nan)))
    xla_events = tf.function(
        lambda e: events.validate_events(e, SHAPE, K, "evidence"), jit_compile=True
    )
    with pytest.raises(ValueError, match="evidence cannot be checked inside an XLA-compiled"):
        xla_events(tf.constant(evidence))


# ------------------------------------------------------------------------------ anytime
def test_anytime_checks_the_whole_noise_not_only_the_first_codes():
    keras.utils.set_random_seed(0)
    prior = made.MADE((4,), K, hidden_units=8)
    noise = np.zeros((2, 4, K), np.float32)
    noise[1, 3, 0] = np.nan  # after the 2 codes sampled
    with pytest.raises(ValueError, match=r"noise must be finite: found 1 NaN .* \[1, 3, 0\]"):
        prefix.anytime_sample(prior, noise, 2, "fpi")
    with pytest.raises(ValueError, match="noise must be a float tensor, got dtype int32"):
        prefix.anytime_sample(prior, np.zeros((2, 4, K), np.int32), 2, "fpi")
    with pytest.raises(ValueError, match=r"noise must have shape \[batch, 4, 3\]"):
        prefix.anytime_sample(prior, np.zeros((2, 2, K), np.float32), 2, "fpi")


# ------------------------------------------------------------------- families of orderings
def test_a_tensor_ordering_index_out_of_range_is_an_in_graph_error():
    """On a GPU `tf.gather` returns zeros for an index out of range: the family asserts it."""
    family, x = _family(), tf.zeros((2,) + SHAPE, tf.int32)
    call = tf.function(lambda i: family(x, ordering_index=i)[0])
    for index in (2, -1):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"ordering_index must be in \[0"):
            call(tf.constant(index))
    call(tf.constant(1))  # in range
    # The assert compiles under XLA (no string ops), where it is dropped: the mc objective's
    # index is drawn in range.
    tf.function(lambda i: family(x, ordering_index=i)[0], jit_compile=True)(tf.constant(1))
    for index in (2, True):
        with pytest.raises(ValueError, match=r"ordering_index must be (an integer )?in \[0, 2\)"):
            family(x, ordering_index=index)


def test_the_mc_objective_needs_a_seed():
    family = _family()
    with pytest.raises(ValueError, match="the mc objective draws its ordering from the step's"):
        ordering_objectives.objective(family, tf.zeros((2,) + SHAPE, tf.int32), "mc")
