"""Bad input to every sampling entry of the library and of a SavedModel, traced and under XLA.

Each case must be refused with one error naming the problem (ValueError in the library,
InvalidArgumentError from a SavedModel signature), and none may return a sample: NaN and
infinite noise (which would decide an argmax arbitrarily, and differently under XLA), a wrong
dtype or rank, an empty batch, an unknown method, values outside [0, K), a bad count or seed.
"""

import glob
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfps.sampling import incremental, predictive
from tfps.serving import contract_checks, export, exported_sampler
from tfps.train import rundir

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
