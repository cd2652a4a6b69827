"""The declared public API (`tfps.__all__`), the sampler interface both samplers implement, and the
adapter that samples any Keras model or function returning logits."""

import ast
import glob
import inspect
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps

import oracles
from launchers import REPO, launch, launch_here


def test_import_tfps_is_free_of_tensorflow_and_lists_the_api():
    code = "import sys, tfps; print(tfps.__all__); print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.splitlines()
    assert eval(out[0]) == tfps.__all__ and out[1] == "False"


@pytest.mark.parametrize("name", tfps.__all__)
def test_every_public_name_resolves_and_has_a_docstring(name):
    value = getattr(tfps, name)
    assert inspect.getdoc(value), f"tfps.{name} has no docstring"
    assert name in dir(tfps)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        tfps.nothing_here  # noqa: B018


def test_launchers_use_no_private_name_of_tfps():
    for path in glob.glob(os.path.join(REPO, "launch", "*.py")):
        tree = ast.parse(open(path).read())
        tfps_names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfps"):
                for alias in node.names:
                    assert not alias.name.startswith("_"), f"{path} imports {alias.name}"
                    tfps_names.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in tfps_names
                and node.attr.startswith("_")
            ):
                raise AssertionError(f"{path} uses {node.value.id}.{node.attr}")


class CumulativeARM(keras.Model):
    """A plain Keras model, not of the ARM protocol: logits `[B, H, W, C, K]` of position i from
    the counts of each value at positions < i (exclusive cumulative sum) and a bias per position."""

    def __init__(self, event_shape, num_categories):
        super().__init__()
        self.shape_, self.k = tuple(event_shape), num_categories
        d = int(np.prod(event_shape))
        self.mix = keras.layers.Dense(num_categories)
        self.bias = self.add_weight(shape=(d, num_categories), initializer="random_normal")

    def call(self, x):
        batch = tf.shape(x)[0]
        flat = tf.one_hot(tf.reshape(x, [batch, -1]), self.k)
        past = tf.cumsum(flat, axis=1, exclusive=True)
        logits = self.mix(past) + self.bias
        return tf.reshape(logits, tf.concat([[batch], self.shape_, [self.k]], axis=0))


@pytest.fixture(scope="module")
def keras_model():
    keras.utils.set_random_seed(3)
    model = CumulativeARM((3, 4, 2), 3)
    model(tf.zeros((1, 3, 4, 2), tf.int32))
    return model


def test_a_plain_keras_model_samples_exactly_with_every_method_and_exports(keras_model, tmp_path):
    sampler = tfps.from_logits_fn(keras_model, (3, 4, 2), 3)
    assert isinstance(sampler, tfps.Sampler)
    assert set(sampler.methods) >= {"ancestral", "zeros", "last", "fpi", "fpi_argmax"}
    tfps.check_autoregressive(sampler.model, (3, 4, 2), 3)
    noise = tfps.gumbel_noise((4, 3, 4, 2, 3), seed=1)
    reference = oracles.ancestral_reference(sampler.model, noise)
    for method in sampler.methods:
        np.testing.assert_array_equal(sampler.sample(noise, method).samples, reference, method)
    scheduled = sampler.sample_scheduled(noise, "fpi", slots=2)
    np.testing.assert_array_equal(scheduled.samples, reference)
    served = tfps.load_exported(tfps.export_model(sampler.model, str(tmp_path / "plain")))
    assert isinstance(served, tfps.Sampler) and served.metadata["model"]["arch"] == "logits_fn"
    for method in ("ancestral", "fpi"):
        np.testing.assert_array_equal(served.sample(noise, method).samples, reference, method)


def test_a_function_of_sequences_samples_too():
    weights = tf.constant(np.random.default_rng(0).normal(size=(6, 6, 4)), tf.float32)
    mask = tf.constant(np.tril(np.ones((6, 6), np.float32), -1))  # position i sees j < i

    def logits_fn(x):
        onehot = tf.one_hot(x, 4)  # [B, 6, 4]
        return tf.einsum("ij,ijk,bjc->bik", mask, weights, onehot)  # [B, 6, 4]

    sampler = tfps.from_logits_fn(logits_fn, (6,), 4)
    noise = tfps.gumbel_noise((3, 6, 4), seed=2)
    reference = oracles.ancestral_reference(sampler.model, noise)
    for method in ("ancestral", "fpi", "zeros"):
        np.testing.assert_array_equal(sampler.sample(noise, method).samples, reference, method)


@pytest.mark.parametrize(
    "fn, event_shape, k, error, message",
    [
        ("not callable", (4,), 2, TypeError, "fn must be callable"),
        (lambda x: x, (4,), 1, ValueError, "num_categories must be an integer >= 2"),
        (lambda x: x, (4, 1, 1, 1), 2, ValueError, "event shape"),
    ],
)
def test_the_adapter_refuses_bad_arguments(fn, event_shape, k, error, message):
    with pytest.raises(error, match=message):
        tfps.from_logits_fn(fn, event_shape, k)


def test_logits_of_the_wrong_shape_are_named():
    sampler = tfps.from_logits_fn(lambda x: tf.zeros([tf.shape(x)[0], 5, 3]), (4,), 3)
    with pytest.raises(ValueError, match=r"fn returned logits of shape .*expected \[B, 4, 3\]"):
        sampler.sample(tfps.gumbel_noise((2, 4, 3), seed=0), "fpi")


def test_a_function_returning_logits_and_h_is_told_to_return_logits_only():
    sampler = tfps.from_logits_fn(lambda x: (tf.zeros([2, 4, 3]), None), (4,), 3)
    with pytest.raises(ValueError, match="must return one logits tensor"):
        sampler.sample(tfps.gumbel_noise((2, 4, 3), seed=0), "fpi")


def test_the_library_and_the_exported_sampler_share_one_interface():
    shipped = tfps.load(os.path.join(REPO, "exported", "digits", "1"))
    assert isinstance(shipped.sampler, tfps.Sampler)
    assert isinstance(shipped.sampler, tfps.ExportedSampler)
    noise = shipped.sampler.check_noise(np.zeros((1,) + shipped.sampler.event_shape + (17,)))
    assert noise.dtype == tf.float32
    with pytest.raises(ValueError, match="noise"):
        shipped.sampler.check_noise(np.zeros((1, 3, 3)))


def test_an_export_samples_on_two_replicas_as_on_one_device(tmp_path):
    export = os.path.join(REPO, "exported", "digits", "1")
    samples = {}
    for strategy in ("default", "mirrored"):
        out = tmp_path / strategy
        extra = ["--cpu_replicas=2"] if strategy == "mirrored" else []
        # 2 logical CPU devices need a fresh process; one device runs here.
        result = (launch if extra else launch_here)(
            "launch.sample", f"--model={export}", "--method=fpi", "--num_samples=5",
            "--batch_size=2", "--seed=3", f"--output_dir={out}", f"--strategy={strategy}", *extra,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        samples[strategy] = np.load(out / "samples_fpi.npy")
    assert samples["default"].shape[0] == 5
    np.testing.assert_array_equal(samples["mirrored"], samples["default"])


API_PAGE = os.path.join(REPO, "docs", "api.md")


def render_api_page():
    """docs/api.md from `tfps.__all__`: each name's signature and the first paragraph of its
    docstring (regenerate with `python tests/test_api.py`)."""
    lines = [
        "# The tfps API",
        "",
        "Generated from `tfps.__all__` and the docstrings by `python tests/test_api.py`;",
        "`tests/test_api.py` fails when this page and the code disagree. Everything not listed",
        "here may change without notice.",
        "",
    ]
    for name in tfps.__all__:
        value = getattr(tfps, name)
        try:
            signature = re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(value)))
        except (TypeError, ValueError):
            signature = ""
        kind = "class" if inspect.isclass(value) else "function"
        summary = inspect.getdoc(value).split("\n\n")[0].replace("\n", " ")
        home = f"{value.__module__}.{value.__qualname__}"
        lines += [f"## `tfps.{name}`", "", f"{kind} `{home}`", ""]
        if signature:
            lines += ["```python", f"tfps.{name}{signature}", "```", ""]
        lines += [summary, ""]
    return "\n".join(lines)


def test_the_api_page_matches_the_code():
    with open(API_PAGE) as f:
        assert f.read() == render_api_page(), "docs/api.md is stale: python tests/test_api.py"


if __name__ == "__main__":
    with open(API_PAGE, "w") as f:
        f.write(render_api_page())
    print(f"wrote {API_PAGE}")


def test_the_errors_a_user_catches_are_public_and_are_the_raised_classes():
    from tfps.distribute import strategies
    from tfps.models import causality
    from tfps.sampling import predictive
    from tfps.serving import exported_sampler
    from tfps.train import run_lock, rundir

    raised = {
        "CheckpointError": rundir.CheckpointError,
        "RunDirectoryLockedError": run_lock.RunDirectoryLockedError,
        "WorkerLostError": strategies.WorkerLostError,
        "ExportError": exported_sampler.ExportError,
        "IncompleteSampleError": predictive.IncompleteSampleError,
        "NotAutoregressiveError": causality.NotAutoregressiveError,
    }
    for name, cls in raised.items():
        assert name in tfps.__all__ and getattr(tfps, name) is cls and issubclass(cls, Exception)
