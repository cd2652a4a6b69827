"""The ARM protocol through the public API: a user's own Keras ARM (written here, not from tfps)
trains, samples exactly with every method, exports and loads; the perturbation checker passes
on ARMs and names the first leaking pair of a leaking one; old PixelCNN configs still build."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps
from launch import benchmark_run, sample_run
from tfps.data import text
from tfps.models import arms
from tfps.models import heads as heads_lib
from tfps.sampling import noise, predictive, protocol
from tfps.serving import export, exported_sampler, loading
from tfps.train import training

from oracles import ancestral_reference
from tiny_models import tiny_model


@keras.saving.register_keras_serializable(package="user_tests")
class CausalMixer(keras.Model):
    """A user's ARM on any event shape: x is flattened in raster order, embedded, mixed over
    earlier positions by a strictly lower-triangular learned matrix, and read out per position.

        h_i = elu(sum_{j < i} M_ij e(x_j) + b_i),   logits_i = V h_i + c_i

    `leaks`: extra (earlier, later) flat pairs whose mask entry is opened (a deliberate bug);
    `diagonal`: open the diagonal (the classic off-by-one: logits_i see x_i). h is returned (as
    `[B, L, F]`) for sequence events `(L,)` only; otherwise the model has no representation.
    """

    def __init__(self, event_shape, num_categories, width=8, leaks=(), diagonal=False, **kwargs):
        super().__init__(**kwargs)
        self.event_shape = tuple(int(s) for s in event_shape)
        self.num_categories = int(num_categories)
        self.num_variables = int(np.prod(self.event_shape))
        self.width, self.leaks, self.diagonal = int(width), tuple(map(tuple, leaks)), diagonal
        d = self.num_variables
        mask = np.tril(np.ones((d, d), np.float32), 0 if diagonal else -1)  # [i, j]: i sees j
        for earlier, later in self.leaks:
            mask[earlier, later] = 1.0
        self.mask = tf.constant(mask)
        self.embed = keras.layers.Embedding(self.num_categories, self.width)
        self.mix = self.add_weight(shape=(d, d), initializer="glorot_uniform", name="mix")
        self.bias = self.add_weight(shape=(d, self.width), initializer="zeros", name="bias")
        self.out = keras.layers.Dense(self.num_categories)
        self.position_logits = self.add_weight(
            shape=(d, self.num_categories), initializer="zeros", name="position_logits"
        )
        self.build((None,) + self.event_shape)

    @property
    def representation_channels(self):
        return self.width if len(self.event_shape) == 1 else None

    def build(self, input_shape):
        self.embed.build((None, self.num_variables))
        self.out.build((None, self.num_variables, self.width))
        self.built = True

    def call(self, x, training=False):
        batch = tf.shape(x)[0]
        e = self.embed(tf.reshape(tf.cast(x, tf.int32), [batch, self.num_variables]))
        h = tf.nn.elu(tf.einsum("ij,bjf->bif", self.mix * self.mask, e) + self.bias)
        logits = self.out(h) + self.position_logits
        logits = tf.reshape(logits, tf.concat([[batch], self.event_shape, [-1]], axis=0))
        return logits, (h if self.representation_channels else None)

    def model_config(self):
        return {
            "arch": "user_mixer",
            "event_shape": list(self.event_shape),
            "num_categories": self.num_categories,
            "width": self.width,
            "leaks": [list(p) for p in self.leaks],
            "diagonal": self.diagonal,
        }

    def get_config(self):
        return {**super().get_config(), **self.model_config()}


def _user_factory(model_config):
    values = {k: v for k, v in model_config.items() if k in ("leaks", "diagonal")}
    width = model_config.get("width", model_config.get("filters", 8))
    return CausalMixer(model_config["event_shape"], model_config["num_categories"], width, **values)


arms.register("user_mixer", _user_factory, overwrite=True)


def _user_model(event_shape=(7,), k=5, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return CausalMixer(event_shape, k, **kwargs)


# ----------------------------------------------------------------------------- the checker


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: _user_model((7,)), id="user_sequence"),
        pytest.param(lambda: _user_model((3, 2)), id="user_sequence_of_vectors"),
        pytest.param(lambda: _user_model((2, 3, 2)), id="user_image"),
        pytest.param(lambda: tiny_model((3, 3, 2), 3), id="pixelcnn"),
    ],
)
def test_check_autoregressive_passes_on_arms(model):
    model = model()
    summary = tfps.check_autoregressive(model, model.event_shape, model.num_categories, seed=1)
    assert summary.exhaustive and summary.positions == model.num_variables
    assert summary.largest_change <= summary.tolerance


@pytest.mark.parametrize(
    "event_shape, leak, earlier, later",
    [
        ((7,), dict(leaks=[(2, 5)]), (2,), (5,)),
        ((7,), dict(diagonal=True), (0,), (0,)),  # logits_i see x_i
        ((3, 2), dict(leaks=[(1, 4)]), (0, 1), (2, 0)),
        ((2, 2, 2), dict(leaks=[(3, 6), (5, 6)]), (0, 1, 1), (1, 1, 0)),
    ],
)
def test_check_autoregressive_names_the_first_leaking_pair(event_shape, leak, earlier, later):
    model = _user_model(event_shape, **leak)
    with pytest.raises(tfps.NotAutoregressiveError, match="not autoregressive") as caught:
        tfps.check_autoregressive(model, event_shape, 5)
    assert (caught.value.earlier, caught.value.later) == (earlier, later)
    assert f"position {later}" in str(caught.value) and f"position {earlier}" in str(caught.value)


def _with_h(model, leak):
    """`model` with `leak(x)` `[B, *spatial]` added to every channel of its h."""

    def call(x, training=False):
        logits, h = model(x, training=training)
        return logits, h + tf.cast(leak(x), tf.float32)[..., None]

    return call


def test_check_autoregressive_checks_h_when_the_model_returns_one():
    check = tfps.check_autoregressive(_user_model((7,)), (7,), 5)
    assert check.checked_h and check.unused == () and check.largest_change <= check.tolerance
    check = tfps.check_autoregressive(_user_model((3, 2)), (3, 2), 5)  # h is None
    assert not check.checked_h and check.unused == ()


@pytest.mark.parametrize(
    "leak, earlier, later",
    [
        (lambda x: x, (0,), (0,)),  # h at position p sees x_p
        (lambda x: tf.roll(x, -3, axis=1), (0,), (3,)),  # h at p sees x_(p+3) mod 7
    ],
)
def test_check_autoregressive_names_a_leak_through_h_only(leak, earlier, later):
    model = _with_h(_user_model((7,)), leak)
    with pytest.raises(tfps.NotAutoregressiveError, match="changes the representation h") as e:
        tfps.check_autoregressive(model, (7,), 5)
    assert e.value.output == "h" and (e.value.earlier, e.value.later) == (earlier, later)
    assert f"x at position {later}" in str(e.value) and f"h at position {earlier}" in str(e.value)


def test_check_autoregressive_samples_positions_of_large_events():
    model = _user_model((40,), leaks=[(0, 39)])  # the last position is always tested
    with pytest.raises(tfps.NotAutoregressiveError) as caught:
        tfps.check_autoregressive(model, max_positions=8, trials=1)
    assert (caught.value.earlier, caught.value.later) == ((0,), (39,))
    summary = tfps.check_autoregressive(_user_model((40,)), max_positions=8)
    assert summary.positions == 8 and not summary.exhaustive
    assert summary.summary().startswith("autoregressive: a sample of 8 of 40 positions perturbed")


def test_check_summary_names_what_was_tested_and_the_unused_inputs():
    check = tfps.check_autoregressive(_user_model((7,)), (7,), 5)
    assert check.summary().startswith("autoregressive: every 7 of 7 positions perturbed")
    assert "h checked too" in check.summary() and "no later logit uses" not in check.summary()

    def ignores_x(x, training=False):  # every logit constant: no input is used
        return tf.zeros(tf.concat([tf.shape(x), [5]], 0))

    check = tfps.check_autoregressive(ignores_x, (7,), 5)
    assert check.unused == (0, 1, 2, 3, 4, 5)
    assert check.summary().endswith("6 position(s) no later logit uses: 0, 1, 2, 3, 4, ...")


def test_check_autoregressive_refuses_wrong_logits_shape():
    def model(x, training=False):
        return tf.zeros([tf.shape(x)[0], 6, 5])

    with pytest.raises(ValueError, match=r"logits \[batch, 7, K\], got logits of shape"):
        tfps.check_autoregressive(model, (7,), 5)
    good = _user_model((7,))
    with pytest.raises(ValueError, match=r"h \[batch, 7, F\] \(or None\).*got h of shape"):
        tfps.check_autoregressive(lambda x, training: (good(x)[0], tf.zeros([1, 1])), (7,), 5)


# ----------------------------------------------------------------------------- registry


def test_old_configs_without_arch_build_a_pixelcnn():
    model = tiny_model((4, 4, 1), 3)
    old = {k: v for k, v in model.model_config().items() if k not in ("arch", "num_scales")}
    rebuilt = arms.build_model(old)
    assert rebuilt.model_config() == model.model_config()
    assert rebuilt.event_shape == (4, 4, 1) and model.model_config()["arch"] == "pixelcnn"
    assert arms.full_model_config(old) == model.model_config()


def test_launchers_import_the_modules_that_register_an_arch(monkeypatch):
    monkeypatch.setenv(arms.MODULES_VARIABLE, " json , no_such_arm_module")
    with pytest.raises(ValueError, match="TFPS_ARM_MODULES names 'no_such_arm_module'"):
        arms.check_arch("pixelcnn")
    monkeypatch.setenv(arms.MODULES_VARIABLE, "test_arms")  # this file registers user_mixer
    assert arms.check_arch("user_mixer") == "user_mixer"


def test_unknown_arch_is_one_error_listing_the_known():
    with pytest.raises(ValueError, match="unknown model arch 'nope'; choose one of: 'pixelcnn'"):
        arms.build_model({"arch": "nope"})
    with pytest.raises(ValueError, match="unknown model arch 'nope'.*'user_mixer'"):
        training.TrainConfig(arch="nope").validate()
    with pytest.raises(ValueError, match="arch 'pixelcnn' models images"):
        training.TrainConfig(dataset="text_python").validate()


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("event_shape", [(6,), (3, 2), (2, 2, 2)])
def test_every_method_returns_the_ancestral_sample_for_a_user_arm(event_shape):
    model = _user_model(event_shape, k=4, seed=2)
    sampler = predictive.sampler_for_model(model)
    eps = noise.gumbel_noise((3,) + event_shape + (4,), seed=7)
    expected = ancestral_reference(model, eps)
    assert expected.shape == (3,) + event_shape
    evidence = np.asarray(expected)
    mask = np.zeros(evidence.shape, bool).reshape(3, -1)
    mask[:, 1] = True
    mask = mask.reshape(evidence.shape)
    for method in sampler.methods:
        result = sampler.sample(eps, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
        assert result.converged_at.shape == (3,) + event_shape
        scheduled = sampler.sample_scheduled(eps, method, slots=2)
        np.testing.assert_array_equal(scheduled.samples.numpy(), expected, err_msg=method)
        given = sampler.sample(eps, method, evidence=evidence, evidence_mask=mask)
        np.testing.assert_array_equal(given.samples.numpy(), expected, err_msg=method)
    with pytest.raises(ValueError, match=r"noise must have shape \[batch, .*categories\)"):
        sampler.sample(noise.gumbel_noise((1, 5, 4), 0))


@pytest.mark.parametrize("shared", [True, False])
def test_learned_heads_on_the_one_row_layout_of_a_sequence_sample_exactly(shared):
    model = _user_model((9,), k=3, seed=4)
    heads = heads_lib.heads_for_model(model, steps=3, filters=4, shared=shared)
    sampler = predictive.sampler_for_model(model, heads=heads)
    assert heads.method in sampler.methods
    eps = noise.gumbel_noise((2, 9, 3), seed=11)
    expected = ancestral_reference(model, eps)
    for method in (heads.method, f"{heads.method}_argmax"):
        result = sampler.sample(eps, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
        scheduled = sampler.sample_scheduled(eps, method, slots=1)
        np.testing.assert_array_equal(scheduled.samples.numpy(), expected, err_msg=method)


def test_shared_heads_need_a_representation():
    with pytest.raises(ValueError, match="returns no representation h"):
        heads_lib.heads_for_model(_user_model((3, 2)), steps=2, filters=4)


# ----------------------------------------------------------------------------- end to end

_TEXT_RUN = dict(
    dataset="text_python",
    arch="user_mixer",
    filters=8,
    batch_size=8,
    steps=3,
    log_every=3,
    eval_every=3,
    checkpoint_every=3,
    eval_batches=1,
    forecast_steps=2,
    seed=0,
)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("user_arm") / "run")
    metrics = training.train(training.TrainConfig(**_TEXT_RUN), logdir)
    return logdir, metrics


def test_a_user_arm_trains_samples_and_exports_through_the_public_api(text_run, tmp_path):
    logdir, metrics = text_run
    assert metrics["step"] == 3 and np.isfinite(metrics["test_bpd"])
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    assert config["model"]["arch"] == "user_mixer" and config["model"]["event_shape"] == [64]
    assert (
        config["dataset"]["licence"].startswith("PSF")
        and len(config["dataset"]["vocabulary"]) == 96
    )

    loaded = loading.load(logdir)
    sampler = loaded.sampler
    assert "learned" in sampler.methods and sampler.event_shape == (64,)
    eps = noise.gumbel_noise((2, 64, 96), seed=3)
    model, _ = training.load_trained(logdir)
    expected = ancestral_reference(model, eps)
    library = {}
    for method in sampler.methods:
        library[method] = sampler.sample(eps, method)
        np.testing.assert_array_equal(library[method].samples.numpy(), expected, err_msg=method)

    path = export.export_trained(logdir, str(tmp_path / "exported"), name="text")
    served = exported_sampler.load_exported(path)
    assert served.event_shape == (64,) and served.metadata["event_shape"] == [64]
    assert tuple(served.methods) == tuple(sampler.methods)
    for method in served.methods:
        result = served.sample(eps, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
        assert int(result.arm_calls) == int(library[method].arm_calls), method
    seeded = served.sample_from_seed(5, 2, "fpi").samples.numpy()
    np.testing.assert_array_equal(seeded, sampler.sample_from_seed(5, 2, "fpi").samples.numpy())
    x = expected
    assert served.logits(x).shape == (2, 64, 96)
    np.testing.assert_allclose(
        served.log_prob(x)[0].numpy(),
        protocol.log_prob(model(x)[0], x).numpy(),
        rtol=1e-5,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[batch, 64\] \(batch, length\)"):
        served.logits(np.zeros((1, 8, 8), np.int32))


def test_the_sample_launcher_decodes_text_and_draws_strips(text_run, tmp_path):
    logdir, _ = text_run
    lines = []
    sample_run.sample_to_files(
        loading.load(logdir), "fpi", 3, 2, 0, str(tmp_path), log=lines.append
    )
    with open(tmp_path / "samples_fpi.txt") as f:
        texts = f.read().splitlines()
    samples = np.load(tmp_path / "samples_fpi.npy")
    assert samples.shape == (3, 64) and len(texts) == 3
    vocabulary = text.VOCABULARY
    assert texts[0] == "".join(vocabulary[v] for v in samples[0]).replace("\n", "\\n")
    assert any(line.startswith("decoded text: ") for line in lines)
    assert os.path.exists(tmp_path / "samples_fpi.png")  # the strips, one per row


def test_a_user_arm_is_benchmarked_in_table_1_format(text_run, tmp_path):
    logdir, _ = text_run
    options = benchmark_run.Options(
        batch_sizes=(1,), num_seeds=1, scheduled_samples=2, scheduled_slots=2,
        output=str(tmp_path),
    )  # fmt: skip
    table = benchmark_run.run_benchmark(loading.load(logdir), logdir, options, log=lambda _: None)
    assert "text_python: d = 64, K = 96, user_mixer (" in table
    assert "| learned (T=2) |" in table and "| fpi |" in table


def test_training_refuses_a_leaking_model_before_writing(tmp_path):
    arms.register("user_leaky", lambda c: _user_factory({**c, "diagonal": True}), overwrite=True)
    logdir = tmp_path / "leaky"
    values = dict(_TEXT_RUN, arch="user_leaky", forecast_steps=0)
    with pytest.raises(tfps.NotAutoregressiveError, match=r"user_leaky is not autoregressive"):
        training.train(training.TrainConfig(**values), str(logdir))
    assert not (logdir / "config.json").exists()


def test_the_readme_example_of_an_own_arm_runs(tmp_path, monkeypatch):
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")) as f:
        readme = f.read()
    begin, end = "<!-- own-arm: begin -->\n```python\n", "```\n<!-- own-arm: end -->"
    code = readme[readme.index(begin) + len(begin) : readme.index(end)]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert os.path.exists(tmp_path / "runs" / "mixer" / "config.json")
    assert os.path.isdir(tmp_path / "exported" / "mixer" / "1")
