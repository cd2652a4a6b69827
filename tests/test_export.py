"""Tests for tfps/serving/export.py, tfps/serving/module.py, tfps/serving/contract.py and
launch/export.py: the SavedModel serving contract.

Through the SavedModel every method returns the ancestral sample of an independent eager loop
(`oracles.ancestral_reference`), a fixed point of x = argmax(logits(x) + noise) ([1, eq. 8],
Wiggers & Hoogeboom, ICML 2020) computed with the export's own `logits`; the export is loaded
and called in a fresh process
that cannot import tfps, TFP or Keras, and by `saved_model_cli`.
"""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfps.evaluation import benchmarking
from tfps.models import pixelcnn
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive, protocol
from tfps.serving import contract, export, exported_sampler
from tfps.train import training

import oracles
from launchers import REPO, launch_here, run
from tiny_models import trained_model

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
CONTRACT = {  # signature: (inputs, outputs) fixed from the start; more outputs are allowed
    "sample": (
        {"seed", "batch_size", "method"},
        {"samples", "arm_calls", "arm_calls_per_example", "converged_at"},
    ),
    "sample_with_noise": (
        {"noise", "method"},
        {"samples", "arm_calls", "arm_calls_per_example", "converged_at"},
    ),
    "logits": ({"x"}, {"logits"}),
    "log_prob": ({"x"}, {"log_prob", "bits_per_dim"}),
}
CONTRACT["serving_default"] = CONTRACT["sample"]


@pytest.fixture(
    scope="module", params=[((4, 4, 1), 2), ((2, 2, 3), 5)], ids=["4x4x1_k2", "2x2x3_k5"]
)
def exported(request, tmp_path_factory):
    """(model, library sampler, ExportedSampler) for a tiny trained model exported to a tmp dir."""
    image_shape, k = request.param
    model = trained_model(image_shape, k, steps=30)
    base = str(tmp_path_factory.mktemp("exported") / "tiny")
    # Plain calls, untimed (tests/test_export_incremental.py serves both kinds of calls).
    path = export.export_model(model, base, metadata={"name": "tiny"}, incremental=False)
    assert path == os.path.join(base, "1")
    return model, predictive.sampler_for_model(model), exported_sampler.load_exported(base)


def _noise(sampler, batch, seed):
    return noise_lib.gumbel_noise((batch,) + sampler.image_shape + (sampler.num_categories,), seed)


# ----------------------------------------------------------------------------- exactness


@pytest.mark.usefixtures("graph_optimizations")
def test_every_method_returns_the_ancestral_sample_and_a_fixed_point(exported):
    model, library, loaded = exported
    assert loaded.methods == library.methods  # taken from the sampler, not hard-coded
    d = model.num_variables
    for seed in range(2):
        noise = _noise(library, 3, seed)
        reference = oracles.ancestral_reference(model, noise)
        # Fixed point of g(x, eps) = argmax(logits(x) + eps), with the export's own logits.
        g = tf.argmax(loaded.logits(reference) + noise, axis=-1, output_type=tf.int32).numpy()
        np.testing.assert_array_equal(g, reference)
        for method in loaded.methods:
            result = loaded.sample(noise, method)
            np.testing.assert_array_equal(
                result.samples.numpy(), reference, err_msg=f"method {method}, seed {seed}"
            )
            # Bit for bit what the library returns, every output.
            expected = library.sample(noise, method)
            for field in predictive.SampleResult._fields:
                np.testing.assert_array_equal(
                    getattr(result, field).numpy(),
                    getattr(expected, field).numpy(),
                    err_msg=f"{field} of {method}",
                )
            calls = int(result.arm_calls)
            assert 1 <= calls <= d and calls == result.arm_calls_per_example.numpy().max()
            assert calls == d if method == "ancestral" else True
            converged = result.converged_at.numpy()
            assert np.all((1 <= converged) & (converged <= result.accepted_at.numpy()))


def test_sample_draws_the_library_noise_from_the_seed(exported):
    _, library, loaded = exported
    for seed, batch in ((0, 1), (7, 3)):
        expected = library.sample_from_seed(seed, batch, "fpi")
        for key in ("sample", "serving_default"):
            out = loaded.signatures[key](
                seed=tf.constant([0, seed], tf.int64),
                batch_size=tf.constant(batch),
                method=tf.constant("fpi"),
            )
            assert out["samples"].dtype == tf.int32 and out["arm_calls"].shape == ()
            assert out["samples"].shape == (batch,) + library.image_shape
            np.testing.assert_array_equal(out["samples"].numpy(), expected.samples.numpy())
            np.testing.assert_array_equal(
                out["converged_at"].numpy(), expected.converged_at.numpy()
            )
            assert int(out["arm_calls"]) == int(expected.arm_calls)


def test_sample_with_evidence_keeps_the_evidence(exported):
    model, library, loaded = exported
    noise = _noise(library, 2, 5)
    evidence = np.asarray(oracles.ancestral_reference(model, _noise(library, 2, 6)))
    mask = np.zeros(evidence.shape, bool)
    mask[:, 0] = True  # the first row is observed
    result = loaded.sample(noise, "fpi", evidence, mask)
    expected = library.sample(noise, "fpi", evidence, mask)
    np.testing.assert_array_equal(result.samples.numpy(), expected.samples.numpy())
    np.testing.assert_array_equal(result.samples.numpy()[mask], evidence[mask])


def test_inpaint_is_sample_with_evidence_for_the_noise_of_the_seed(exported):
    """An ARM of one ordering inpaints in its own order: `inpaint(seed, x, visible)` is the
    library's sample with x as evidence where visible, for the seed's noise; ordering index 0,
    exact where every visible variable comes first (the top row visible, the rest occluded)."""
    model, library, loaded = exported
    x = np.asarray(oracles.ancestral_reference(model, _noise(library, 3, 6)))
    visible = np.zeros(x.shape, bool)
    visible[:, 0] = True  # the first row: exact
    visible[1, -1, -1], visible[2] = True, ~visible[2]  # a visible last pixel: not exact
    inpaint = loaded.signatures["inpaint"]
    out = inpaint(seed=tf.constant([0, 5], tf.int64), x=tf.constant(x),
                  visible=tf.constant(visible), method=tf.constant("fpi"))  # fmt: skip
    expected = library.sample(_noise(library, 3, 5), "fpi", x, visible)
    np.testing.assert_array_equal(out["samples"].numpy(), expected.samples.numpy())
    np.testing.assert_array_equal(out["ordering_index"].numpy(), [0, 0, 0])
    np.testing.assert_array_equal(out["exact"].numpy(), [True, False, False])


def test_sample_many_matches_the_scheduled_library_sampler(exported):
    _, library, loaded = exported
    expected = library.sample_scheduled_from_seed(2, 5, slots=2, method="fpi")
    result = loaded.sample_scheduled_from_seed(2, 5, slots=2, method="fpi")
    noise = _noise(library, 5, 2)
    with_noise = loaded.sample_scheduled(noise, "fpi", slots=2)
    for field in predictive.SampleResult._fields:
        for got in (result, with_noise):
            np.testing.assert_array_equal(
                getattr(got, field).numpy(), getattr(expected, field).numpy(), err_msg=field
            )
    np.testing.assert_array_equal(
        result.samples.numpy(), library.sample(noise, "ancestral").samples
    )


def test_logits_and_log_prob_match_the_model(exported):
    model, library, loaded = exported
    x = oracles.ancestral_reference(model, _noise(library, 4, 9))
    logits = model(tf.constant(x), training=False)[0]
    np.testing.assert_allclose(loaded.logits(x).numpy(), logits.numpy(), rtol=1e-5, atol=1e-5)
    log_prob, bpd = loaded.log_prob(x)
    np.testing.assert_allclose(log_prob.numpy(), protocol.log_prob(logits, x).numpy(), rtol=1e-5)
    np.testing.assert_allclose(bpd.numpy(), pixelcnn.bits_per_dim(logits, x).numpy(), rtol=1e-5)
    assert log_prob.shape == (4,) and log_prob.dtype == tf.float32


def test_compare_speed_times_both_on_the_same_noise(exported):
    _, library, loaded = exported
    rows = benchmarking.compare_speed(
        loaded, library, methods=("fpi",), batch_sizes=(2,), seeds=range(2)
    )
    assert [(r["method"], r["batch_size"], r["seeds"]) for r in rows] == [("fpi", 2, 2)]
    assert rows[0]["library_median_s"] > 0 and rows[0]["saved_model_median_s"] > 0


# ----------------------------------------------------------------------------- bad inputs


def _bad_inputs(h, w, c, k):
    image, noise = (2, h, w, c), (2, h, w, c, k)

    def i32(shape, value=0):
        return tf.fill(shape, tf.constant(value, tf.int32))

    seed = tf.constant([0, 1], tf.int64)
    fpi = tf.constant("fpi")
    return [
        (
            "sample_with_noise",
            dict(noise=tf.zeros(noise), method=tf.constant("magic")),
            r"unknown sampling method: magic \(choose one of: ancestral, .*fpi",
        ),
        (
            "sample_with_noise",
            dict(noise=tf.zeros(noise), method=tf.constant("")),
            r"unknown sampling method: \(empty string\)",
        ),
        (
            "sample_with_noise",
            dict(noise=tf.zeros(noise), method=tf.constant(["fpi"])),
            r"method must be a scalar, got shape \[1\]",
        ),
        (
            "sample_with_noise",
            dict(noise=tf.zeros(noise[:-1]), method=fpi),
            rf"noise must have shape \[batch >= 1, {h}, {w}, {c}, {k}\].*got \[2, {h}, {w}, {c}\]",
        ),
        (
            "sample_with_noise",
            dict(noise=tf.zeros((2, h + 1, w, c, k)), method=fpi),
            rf"noise must have shape .*got \[2, {h + 1}, {w}, {c}, {k}\]",
        ),
        (
            "sample_with_noise",
            dict(noise=tf.zeros((0,) + noise[1:]), method=fpi),
            r"noise must have shape \[batch >= 1",
        ),
        (
            "sample",
            dict(seed=seed, batch_size=tf.constant(0), method=fpi),
            r"batch_size must be >= 1, got 0",
        ),
        (
            "sample",
            dict(seed=seed, batch_size=tf.constant([2]), method=fpi),
            r"batch_size must be a scalar",
        ),
        (
            "sample",
            dict(seed=tf.constant([1, 2, 3], tf.int64), batch_size=tf.constant(2), method=fpi),
            r"seed must have shape \[2\], got \[3\]",
        ),
        (
            "sample",
            dict(seed=tf.constant([0, 2**40], tf.int64), batch_size=tf.constant(2), method=fpi),
            r"seed values must lie in the int32 range",
        ),
        (
            "sample",
            dict(seed=seed, batch_size=tf.constant(2), method=tf.constant("nope")),
            r"unknown sampling method: nope",
        ),
        (
            "sample_many",
            dict(seed=seed, num_samples=tf.constant(0), slots=tf.constant(2), method=fpi),
            r"num_samples must be >= 1, got 0",
        ),
        (
            "sample_many",
            dict(seed=seed, num_samples=tf.constant(3), slots=tf.constant(-1), method=fpi),
            r"slots must be >= 1, got -1",
        ),
        (
            "sample_many_with_evidence",
            dict(
                noise=tf.zeros(noise),
                evidence=i32(image),
                evidence_mask=tf.zeros(image, tf.bool),
                slots=tf.constant(1),
                method=tf.constant("x"),
            ),
            r"unknown sampling method: x",
        ),
        (
            "logits",
            dict(x=i32(image, k)),
            rf"x values must lie in \[0, {k}\), found values in \[{k}, {k}\]",
        ),
        ("logits", dict(x=i32(image, -1)), rf"x values must lie in \[0, {k}\)"),
        ("logits", dict(x=i32(image[:-1])), rf"x must have shape \[batch, {h}, {w}, {c}\]"),
        (
            "log_prob",
            dict(x=i32((2, h, w, c + 1))),
            rf"x must have shape .*got \[2, {h}, {w}, {c + 1}\]",
        ),
        (
            "sample_with_evidence",
            dict(
                noise=tf.zeros(noise),
                evidence=i32((3, h, w, c)),
                evidence_mask=tf.zeros(image, tf.bool),
                method=fpi,
            ),
            r"evidence must have the batch size of noise",
        ),
        (
            "sample_with_evidence",
            dict(
                noise=tf.zeros(noise),
                evidence=i32(image, k),
                evidence_mask=tf.zeros(image, tf.bool),
                method=fpi,
            ),
            rf"evidence values must lie in \[0, {k}\)",
        ),
    ]


def test_bad_inputs_raise_invalid_argument_naming_the_problem(exported):
    _, library, loaded = exported
    for signature, kwargs, pattern in _bad_inputs(*library.image_shape, library.num_categories):
        with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
            loaded.signatures[signature](**kwargs)


# ----------------------------------------------------------------------------- versions


@pytest.fixture
def fake_save(monkeypatch):
    """Replaces the SavedModel writer by one that writes a marker file (versioning only)."""

    def save(module, directory):
        os.makedirs(directory)
        with open(os.path.join(directory, "saved_model.pb"), "w") as f:
            f.write(module.metadata_json)
        return directory

    monkeypatch.setattr(export, "save", save)


def test_new_exports_take_the_next_version(tmp_path, fake_save):
    model = pixelcnn.PixelCNN((2, 2, 1), 2, num_resnets=0, filters=4)
    base = str(tmp_path / "m")
    assert export.export_model(model, base) == os.path.join(base, "1")
    assert export.export_model(model, base) == os.path.join(base, "2")
    os.makedirs(os.path.join(base, "7"))  # a version TF Serving would see, even if empty
    assert export.export_model(model, base) == os.path.join(base, "8")
    assert export.list_versions(base) == [1, 2, 8]
    assert export.resolve_export(base) == os.path.join(base, "8")
    assert sorted(os.listdir(base)) == ["1", "2", "7", "8"]  # no staging directory left


def test_explicit_version_needs_overwrite(tmp_path, fake_save):
    model = pixelcnn.PixelCNN((2, 2, 1), 2, num_resnets=0, filters=4)
    base = str(tmp_path / "m")
    export.export_model(model, base, version=3, metadata={"tag": "old"})
    with pytest.raises(FileExistsError, match="already exists"):
        export.export_model(model, base, version=3)
    export.export_model(model, base, version=3, overwrite=True, metadata={"tag": "new"})
    with open(os.path.join(base, "3", "saved_model.pb")) as f:
        assert json.load(f)["tag"] == "new"
    with pytest.raises(ValueError, match="version must be an integer >= 1"):
        export.export_model(model, base, version=0)


def test_a_failed_export_leaves_the_versions_as_they_were(tmp_path, fake_save, monkeypatch):
    model = pixelcnn.PixelCNN((2, 2, 1), 2, num_resnets=0, filters=4)
    base = str(tmp_path / "m")
    export.export_model(model, base)

    def failing_save(module, directory):
        os.makedirs(directory)
        open(os.path.join(directory, "half_written"), "w").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "save", failing_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_model(model, base)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_model(model, base, version=1, overwrite=True)
    assert os.listdir(base) == ["1"]
    assert export.list_versions(base) == [1]


def test_resolve_export_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no numbered versions"):
        export.resolve_export(str(tmp_path))
    assert not export.is_export(str(tmp_path))


# ----------------------------------------------------------------------------- the contract


def test_the_contract_table_names_every_signature_and_sample_output():
    assert contract.SIGNATURES == (
        "serving_default",
        "sample",
        "sample_with_noise",
        "sample_with_evidence",
        "sample_many",
        "sample_many_with_evidence",
        "inpaint",
        "logits",
        "log_prob",
        "metadata",
    )
    # Exports from before `inpaint` still load (tests/test_pretrained.py).
    assert contract.ADDED_LATER == ("inpaint",)
    assert contract.SAMPLE_OUTPUTS == predictive.SampleResult._fields
    concrete = contract.concrete_contract((4, 4, 1), 2, ("a", "b"), decoded_shape=(8, 8, 1))
    assert concrete["serving_default"] == concrete["sample"]
    assert concrete["sample_with_noise"]["inputs"]["noise"] == {
        "dtype": "float32",
        "shape": [None, 4, 4, 1, 2],
    }
    assert concrete["sample_many"]["outputs"]["images"]["shape"] == [None, 8, 8, 1]
    assert concrete["metadata"]["outputs"]["methods"] == {"dtype": "string", "shape": [2]}
    inpaint = concrete["inpaint"]["outputs"]  # the fill, no decoded images
    assert inpaint["ordering_index"]["shape"] == [None] and "images" not in inpaint
    assert "images" not in contract.concrete_contract((4, 4, 1), 2, ("a",))["sample"]["outputs"]
    # A prior over an ordered code adds the anytime signature (tests/test_anytime.py).
    assert contract.ANYTIME_SIGNATURES == ("sample_within_budget",)
    assert "sample_within_budget" not in concrete
    anytime = contract.concrete_contract((6,), 8, ("a",), decoded_shape=(8, 8, 1), anytime=True)
    assert anytime["sample_within_budget"]["outputs"]["num_codes"]["shape"] == [None]
    assert anytime["sample_within_budget"]["inputs"]["max_milliseconds"]["dtype"] == "float32"


def test_the_docs_show_the_contract_as_the_table_renders_it():
    with open(os.path.join(REPO, "docs", "serving.md")) as f:
        doc = f.read()
    begin, end = "<!-- contract: begin -->\n", "\n<!-- contract: end -->"
    assert doc[doc.index(begin) + len(begin) : doc.index(end)] == contract.contract_markdown()


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def cli_export(tiny_run, tmp_path_factory):
    """`launch/export.py` run on the tiny digits run (--incremental=false, the default: plain
    calls, deterministic): (export path, logdir, metrics)."""
    logdir, metrics = tiny_run
    root = str(tmp_path_factory.mktemp("cli_exports"))
    done = launch_here("launch.export", f"--model={logdir}", f"--export_dir={root}")
    assert done.returncode == 0, done.stderr[-3000:]
    path = os.path.join(root, "digits", "1")
    assert f"exported {path}" in done.stdout
    assert "; plain ARM calls (incremental=false: forced)" in done.stdout  # not timed
    return path, logdir, metrics


def test_launcher_records_the_training_metadata(cli_export):
    path, _, metrics = cli_export
    metadata = export.read_metadata(os.path.dirname(path))
    assert metadata["format"] == contract.FORMAT
    assert metadata["image_shape"] == [8, 8, 1] and metadata["num_categories"] == 17
    assert metadata["methods"][0] == "ancestral" and "fpi" in metadata["methods"]
    assert "raster" in metadata["ordering"]
    assert metadata["training"]["dataset"]["name"] == "digits"
    assert metadata["training"]["test_bpd"] == pytest.approx(metrics["test_bpd"])
    assert metadata["training"]["step"] == metrics["step"]
    assert metadata["tfps_version"] and metadata["tensorflow_version"] == tf.__version__
    assert metadata["signatures"]["sample"]["inputs"]["seed"] == {"dtype": "int64", "shape": [2]}
    # The default: plain calls, nothing timed, so the same run always exports the same graph
    # (`auto`'s timing: tests/test_export_incremental.py).
    choice = metadata["incremental"]
    assert choice == {"used": False, "mode": "false", "reason": "forced", "rows": None,
                      "seconds": None, "windows": None, "timed": None}  # fmt: skip


def test_launcher_rejects_bad_flags_with_one_clear_error(tmp_path):
    done = launch_here("launch.export", f"--model={tmp_path}/missing", f"--export_dir={tmp_path}")
    assert done.returncode != 0
    assert "no such run directory or checkpoint prefix" in done.stderr
    assert "Traceback" not in done.stderr
    assert not os.path.exists(os.path.join(tmp_path, "digits"))


FRESH_PROCESS = r"""
import json, sys
for name in ("tfps", "tensorflow_probability", "keras"):
    sys.modules[name] = None  # any import of them fails
import numpy as np
import tensorflow as tf

path, out = sys.argv[1], sys.argv[2]
loaded = tf.saved_model.load(path)
sig = loaded.signatures
meta = sig["metadata"]()
info = json.loads(meta["json"].numpy().decode())
with open(loaded.metadata_asset.asset_path.numpy().decode()) as f:
    assert json.load(f) == info
h, w, c = info["image_shape"]
k = info["num_categories"]
noise = -np.log(-np.log(np.random.default_rng(0).uniform(1e-6, 1 - 1e-6, (2, h, w, c, k))))
results = {"methods": [m.decode() for m in meta["methods"].numpy()], "info": info, "outputs": {}}
arrays = {"noise": noise.astype(np.float32)}
for method in results["methods"]:
    r = sig["sample_with_noise"](noise=tf.constant(noise, tf.float32), method=tf.constant(method))
    results["outputs"][method] = {k: [v.dtype.name, list(v.shape)] for k, v in r.items()}
    arrays["samples_" + method] = r["samples"].numpy()
    arrays["arm_calls_" + method] = r["arm_calls"].numpy()
r = sig["sample"](seed=tf.constant([0, 3], tf.int64), batch_size=tf.constant(2),
                  method=tf.constant("fpi"))
arrays["seed_samples"] = r["samples"].numpy()
arrays["default_samples"] = sig["serving_default"](
    seed=tf.constant([0, 3], tf.int64), batch_size=tf.constant(2),
    method=tf.constant("fpi"))["samples"].numpy()
x = arrays["samples_ancestral"]
arrays["logits"] = sig["logits"](x=tf.constant(x))["logits"].numpy()
lp = sig["log_prob"](x=tf.constant(x))
arrays["log_prob"], arrays["bits_per_dim"] = lp["log_prob"].numpy(), lp["bits_per_dim"].numpy()
try:
    sig["sample_with_noise"](noise=tf.constant(noise, tf.float32), method=tf.constant("magic"))
except tf.errors.InvalidArgumentError as e:
    results["error"] = e.message
results["modules"] = sorted(m for m in ("tfps", "tensorflow_probability", "keras")
                            if sys.modules.get(m) is not None)
np.savez(out + ".npz", **arrays)
with open(out + ".json", "w") as f:
    json.dump(results, f)
"""


def test_fresh_tensorflow_only_process_calls_every_signature(cli_export, tmp_path):
    path, logdir, _ = cli_export
    out = str(tmp_path / "fresh")
    done = run([sys.executable, "-c", FRESH_PROCESS, path, out])
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out + ".json") as f:
        results = json.load(f)
    arrays = np.load(out + ".npz")
    assert results["modules"] == []
    model, _ = training.load_trained(logdir)
    library = predictive.sampler_for_model(model)
    assert results["methods"] == list(library.methods)
    assert "unknown sampling method: magic" in results["error"]
    noise = tf.constant(arrays["noise"])
    reference = oracles.ancestral_reference(model, noise)
    for method in library.methods:
        assert results["outputs"][method]["samples"] == ["int32", [2, 8, 8, 1]]
        assert results["outputs"][method]["arm_calls"] == ["int32", []]
        assert results["outputs"][method]["arm_calls_per_example"] == ["int32", [2]]
        assert results["outputs"][method]["converged_at"] == ["int32", [2, 8, 8, 1]]
        np.testing.assert_array_equal(arrays["samples_" + method], reference, err_msg=method)
        assert int(arrays["arm_calls_" + method]) == int(library.sample(noise, method).arm_calls)
    expected = library.sample_from_seed(3, 2, "fpi").samples.numpy()
    np.testing.assert_array_equal(arrays["seed_samples"], expected)
    np.testing.assert_array_equal(arrays["default_samples"], expected)
    logits = model(tf.constant(reference), training=False)[0]
    np.testing.assert_allclose(arrays["logits"], logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(arrays["log_prob"], protocol.log_prob(logits, reference), rtol=1e-5)
    np.testing.assert_allclose(
        arrays["bits_per_dim"], pixelcnn.bits_per_dim(logits, reference), rtol=1e-5
    )


def test_saved_model_cli_shows_and_runs_the_contract(cli_export, tmp_path, tiny_run):
    path, logdir, _ = cli_export
    shown = run([SAVED_MODEL_CLI, "show", "--dir", path, "--all"])
    assert shown.returncode == 0, shown.stderr[-3000:]
    text = shown.stdout
    blocks = text.split("signature_def['")[1:]
    by_name = {block.split("'")[0]: block for block in blocks}
    # Exactly the contract's signatures (no anytime one: this is not a prior over an ordered code).
    assert set(by_name) - {"__saved_model_init_op"} == set(contract.SIGNATURES)
    for name, (inputs, outputs) in CONTRACT.items():
        block = by_name[name]
        given, returned = block.split(
            "The given SavedModel SignatureDef contains the following output"
        )
        for key in inputs:
            assert f"inputs['{key}']" in given, (name, key)
        for key in outputs:
            assert f"outputs['{key}']" in returned, (name, key)
    assert "dtype: DT_INT64" in by_name["sample"] and "dtype: DT_STRING" in by_name["sample"]
    assert "shape: (-1, 8, 8, 1, 17)" in by_name["logits"]

    outdir = str(tmp_path / "cli_run")
    ran = run(
        [
            SAVED_MODEL_CLI,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "sample",
            "--input_exprs",
            "seed=[0, 3];batch_size=2;method='fpi'",
            "--outdir",
            outdir,
        ]
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    samples = np.load(os.path.join(outdir, "samples.npy"))
    model, _ = training.load_trained(logdir)
    expected = predictive.sampler_for_model(model).sample_from_seed(3, 2, "fpi")
    np.testing.assert_array_equal(samples, expected.samples.numpy())
    assert int(np.load(os.path.join(outdir, "arm_calls.npy"))) == int(expected.arm_calls)


def test_launch_sample_reads_a_saved_model(cli_export, tmp_path, tiny_run):
    path, logdir, _ = cli_export
    outdir = str(tmp_path / "samples")
    done = launch_here(
        "launch.sample",
        f"--model={os.path.dirname(path)}",
        "--method=fpi",
        "--num_samples=3",
        "--batch_size=2",
        "--seed=4",
        f"--output_dir={outdir}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the export makes plain ARM calls (incremental=false: forced)" in done.stdout
    samples = np.load(os.path.join(outdir, "samples_fpi.npy"))
    model, _ = training.load_trained(logdir)
    library = predictive.sampler_for_model(model)
    expected = library.sample(noise_lib.gumbel_noise((3, 8, 8, 1, 17), 4), "fpi").samples.numpy()
    np.testing.assert_array_equal(samples, expected)
    assert os.path.isfile(os.path.join(outdir, "samples_fpi.png"))


# ----------------------------------------------------------------------------- shipped model


def test_the_shipped_model_loads_and_samples():
    base = os.path.join(REPO, "exported", "digits")
    path = export.resolve_export(base)
    size = sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )
    assert size < 5 * 2**20, f"{path} holds {size / 2**20:.1f} MiB"
    loaded = exported_sampler.load_exported(base)
    metadata = loaded.metadata
    assert metadata["training"]["dataset"]["name"] == "digits"
    assert metadata["training"]["test_bpd"] < 2.5  # uniform is log2(17) = 4.09
    result = loaded.sample_from_seed(0, 2, "fpi")
    samples = result.samples.numpy()
    assert samples.shape == (2, 8, 8, 1) and samples.min() >= 0 and samples.max() < 17
    assert int(result.arm_calls) < 64  # forecasting helps on a trained model


def test_export_of_a_run_with_heads_serves_learned_exactly(tiny_forecast_run, tmp_path):
    """A run trained with --forecast_steps exports `learned`, exact like every other method."""
    logdir, _ = tiny_forecast_run
    path = export.export_trained(logdir, export_root=str(tmp_path / "exported"), name="heads")
    loaded = exported_sampler.load_exported(path)
    assert "learned" in loaded.methods
    noise = noise_lib.gumbel_noise((2, 8, 8, 1, 17), 4)
    learned = loaded.sample(noise, "learned").samples.numpy()
    np.testing.assert_array_equal(learned, loaded.sample(noise, "ancestral").samples.numpy())
    model, _ = training.load_trained(logdir)
    np.testing.assert_array_equal(learned, oracles.reparametrized_output(model, learned, noise))
