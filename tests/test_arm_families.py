"""Tests for the ARM families tfps/models/made.py, gated_pixelcnn.py, conv1d_arm.py, transformer.py.

* every model is autoregressive in the raster order of its flattened event, and its h at a
  spatial position sees only earlier positions (perturbation; a deliberately leaking variant is
  caught);
* every sampling method, learned forecasting heads included, returns the sample of the
  independent eager ancestral loop (`oracles.ancestral_reference`) for random noise, through the
  canonical image layout of `tfps.sampling.predictive.PredictiveSampler`;
* the Transformer's key/value-cached ancestral sampler equals ancestral sampling;
* the models train (the loss falls) and round-trip through `tf.train.Checkpoint` and their config;
* bad arguments get one clear error.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfps
from tfps.models import arms, conv1d_arm, gated_pixelcnn, heads, made, transformer
from tfps.sampling import events, kv_cache, predictive, protocol
from tfps.sampling import forecasters as forecasters_lib
from tfps.sampling import noise as noise_lib
from tfps.serving import export, exported_sampler
from tfps.train import training

import oracles

# name: (constructor, event shape, K); tiny and without dropout.
MODELS = {
    "made": (functools.partial(made.MADE, hidden_units=64, num_layers=2), (4, 3, 1), 2),
    "made_k3_c2": (functools.partial(made.MADE, hidden_units=24), (3, 2, 2), 3),
    "gated_pixelcnn_c1": (
        functools.partial(gated_pixelcnn.GatedPixelCNN, filters=8, num_layers=2),
        (4, 3, 1),
        2,
    ),
    "gated_pixelcnn_c3": (
        functools.partial(gated_pixelcnn.GatedPixelCNN, filters=8, num_layers=1, kernel_size=5),
        (3, 3, 3),
        4,
    ),
    "conv1d": (
        functools.partial(conv1d_arm.CausalConv1DARM, filters=8, num_layers=3, kernel_size=2),
        (3, 4, 1),
        5,
    ),
    "transformer_image": (
        functools.partial(transformer.Transformer, model_dim=8, num_layers=2, num_heads=2),
        (3, 3, 1),
        3,
    ),
    "transformer_seq_c2": (
        functools.partial(transformer.Transformer, model_dim=8, num_layers=1, num_heads=1),
        (5, 2),
        3,
    ),
    "transformer_text": (
        functools.partial(transformer.Transformer, model_dim=8, num_layers=1, num_heads=2),
        (9,),
        6,
    ),
}


@functools.lru_cache(maxsize=None)
def _model(name, seed=0):
    build, event_shape, k = MODELS[name]
    keras.utils.set_random_seed(seed)
    return build(event_shape, k)


# --------------------------------------------------------------------- autoregressive property


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_family_is_autoregressive_in_its_logits_and_h(name):
    """The public checker, exhaustive: changing x_j leaves the logits at positions <= j and h at
    the pixels p with p * C <= j unchanged, and some later logit changes (the model uses x_j)."""
    _, event_shape, k = MODELS[name]
    model = _model(name)
    assert model.event_shape == event_shape and model.num_categories == k
    assert model.num_variables == int(np.prod(event_shape))
    check = tfps.check_autoregressive(model, event_shape, k, trials=3)
    assert check.exhaustive and check.largest_change <= check.tolerance
    assert check.checked_h == (model.representation_channels is not None)
    assert check.unused == (), f"no later logit depends on the positions {check.unused}"


class _LeakyConv1D(conv1d_arm.CausalConv1DARM):
    """The first causal convolution of option B instead of A: logits_i see x_i."""

    def conv_layer(self, layer):
        return conv1d_arm.CausalConv1D(self.filters, self.kernel_size, name=f"causal_conv_{layer}")


class _LeakyMADE(made.MADE):
    """MADE whose output mask is >= instead of >: logits_i see x_i through the hidden layer."""

    def masks(self):
        degrees = made.made_degrees(self.num_variables, self.num_categories, self.hidden_units, 1)
        masks = made.made_masks(degrees)
        return masks[:-1] + [(degrees[-1][None, :] >= degrees[-2][:, None]).astype(np.float32)]


class _LeakyRepresentation(conv1d_arm.CausalConv1DARM):
    """Causal logits, but h of a pixel from the row of its second channel, which sees its
    first: a leak through h only."""

    def pixel_representation(self, h):
        return super().pixel_representation(h[:, 1:])


@pytest.mark.parametrize(
    "leaky, event_shape, output, pair",
    [
        (_LeakyConv1D, (3, 3, 1), "logits", ((0, 0, 0), (0, 0, 0))),
        (_LeakyMADE, (3, 3, 1), "logits", ((0, 0, 0), (0, 0, 0))),
        (_LeakyRepresentation, (2, 2, 2), "h", ((0, 0, 0), (0, 0, 0))),
    ],
)
def test_the_public_checker_names_the_leak(leaky, event_shape, output, pair):
    keras.utils.set_random_seed(0)
    model = leaky(event_shape, 3, **({"hidden_units": 16} if leaky is _LeakyMADE else {}))
    words = {"logits": "the logits at position", "h": "the representation h at"}[output]
    with pytest.raises(tfps.NotAutoregressiveError, match=f"changes {words}") as caught:
        tfps.check_autoregressive(model, event_shape, 3)
    assert caught.value.output == output and (caught.value.earlier, caught.value.later) == pair


def test_output_shapes_follow_the_protocol():
    for name, (_, event_shape, k) in MODELS.items():
        model = _model(name)
        logits, h = model(tf.zeros((2,) + event_shape, tf.int32))
        assert logits.shape == (2,) + event_shape + (k,) and logits.dtype == tf.float32, name
        if model.representation_channels is None:
            assert h is None, name
        else:
            spatial = event_shape if len(event_shape) == 1 else event_shape[:-1]
            assert h.shape == (2,) + spatial + (model.representation_channels,), name
        x = np.random.default_rng(1).integers(0, k, size=(2,) + event_shape)
        onehot = tf.one_hot(x, k)  # a float one-hot input passes through (gradients reach it)
        np.testing.assert_allclose(model(onehot)[0].numpy(), model(x)[0].numpy(), atol=1e-6)


# ------------------------------------------------------------------------ exact sampling


def _arm(model):
    """The sampler's canonical ARM callable and image layout for a model (`tfps.models.arms`)."""
    return protocol.canonical_arm(model), events.canonical_shape(model.event_shape)


@pytest.mark.usefixtures("graph_optimizations")
@pytest.mark.parametrize(
    "name", ["made", "gated_pixelcnn_c3", "conv1d", "transformer_image", "transformer_text"]
)
def test_every_method_equals_the_ancestral_reference(name):
    model = _model(name)
    arm, image_shape = _arm(model)
    k = model.num_categories
    unshared = heads.make_heads(image_shape, k, 2, 8, shared=False)
    forecasters = forecasters_lib.learned_forecasters(unshared)
    if model.representation_channels is not None:
        shared = heads.make_heads(
            image_shape, k, 2, 8, shared=True, representation_channels=model.representation_channels
        )
        forecasters.update(forecasters_lib.learned_forecasters(shared))
    sampler = predictive.PredictiveSampler(arm, image_shape, k, forecasters=forecasters)
    methods = [m for m in sampler.methods if not m.endswith("_argmax")] + ["fpi_argmax"]
    assert ("learned" in methods) == (model.representation_channels is not None)
    noise = noise_lib.gumbel_noise((3,) + image_shape + (k,), 5)
    reference = oracles.ancestral_reference(arm, noise)
    np.testing.assert_array_equal(oracles.reparametrized_output(arm, reference, noise), reference)
    for method in methods:
        result = sampler.sample(noise, method)
        np.testing.assert_array_equal(result.samples.numpy(), reference, err_msg=method)
        assert 1 <= int(result.arm_calls) <= model.num_variables


@pytest.mark.parametrize("name", ["transformer_image", "transformer_text"])
def test_cached_ancestral_sample_equals_ancestral_sampling(name):
    model = _model(name)
    arm, image_shape = _arm(model)
    k = model.num_categories
    noise = noise_lib.gumbel_noise((4,) + image_shape + (k,), 9)
    reference = oracles.ancestral_reference(arm, noise).reshape((4,) + model.event_shape)
    event_noise = tf.reshape(noise, (4,) + model.event_shape + (k,))
    eager = kv_cache.cached_ancestral_sample(model, event_noise)
    assert eager.dtype == tf.int32
    np.testing.assert_array_equal(eager.numpy(), reference)
    spec = tf.TensorSpec((None,) + model.event_shape + (k,), tf.float32)
    compiled = tf.function(
        functools.partial(kv_cache.cached_ancestral_sample, model), input_signature=[spec]
    )
    np.testing.assert_array_equal(compiled(event_noise).numpy(), reference)
    with pytest.raises(ValueError, match="noise must be a float tensor of shape"):
        kv_cache.cached_ancestral_sample(model, tf.zeros((1,) + model.event_shape + (k + 1,)))


# ------------------------------------------------------------------- training and saving


@pytest.mark.usefixtures("graph_optimizations")
@pytest.mark.parametrize("name", ["made", "gated_pixelcnn_c3", "conv1d", "transformer_text"])
def test_trains_and_round_trips_through_a_checkpoint(name, tmp_path):
    model = _model(name, seed=1)
    k, shape = model.num_categories, model.event_shape
    data = tf.constant(np.random.default_rng(3).integers(0, k, size=(8,) + shape), tf.int32)
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model(data, training=True)[0]
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=data, logits=logits)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(15)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    keras.utils.set_random_seed(7)
    restored = type(model).from_config(model.get_config())
    before = restored(data)[0].numpy()
    tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
    assert not np.allclose(before, model(data)[0].numpy())
    np.testing.assert_allclose(restored(data)[0].numpy(), model(data)[0].numpy(), atol=1e-6)
    built = arms.build_model(model.model_config())  # the one rebuild from a model config
    assert type(built) is type(model) and built.model_config() == model.model_config()


def test_every_family_runs_under_mixed_bfloat16():
    """Weights float32, compute bfloat16 (the trainer's `mixed_precision`): logits stay float32,
    every weight gets a gradient, and the cached sampler runs."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for name in ("made", "gated_pixelcnn_c3", "conv1d", "transformer_text"):
            build, event_shape, k = MODELS[name]
            model = build(event_shape, k)
            x = tf.constant(np.random.default_rng(0).integers(0, k, size=(2,) + event_shape))
            with tf.GradientTape() as tape:
                logits = model(x, training=True)[0]
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x, logits=logits)
                )
            grads = tape.gradient(loss, model.trainable_variables)
            assert logits.dtype == tf.float32 and np.isfinite(float(loss)), name
            assert all(g is not None for g in grads), name
        noise = noise_lib.gumbel_noise((2,) + event_shape + (k,), 0)
        assert kv_cache.cached_ancestral_sample(model, noise).shape == (2,) + event_shape
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ------------------------------------------------------------------------- configuration


def test_run_config_fields_map_to_the_options():
    """The registry builds a family from a run config's generic model fields (training)."""
    fields = dict(filters=12, num_layers=3, num_heads=4, kernel_size=5, dropout_rate=0.1)

    def from_run_config(arch, event_shape, k, fields):
        return arms.build_model(
            {"arch": arch, "event_shape": list(event_shape), "num_categories": k, **fields}
        )

    assert from_run_config("made", (4, 4, 1), 2, fields).hidden_units == 12
    gated = from_run_config("gated_pixelcnn", (4, 4, 1), 2, {**fields, "head_hidden": None})
    assert (gated.filters, gated.num_layers, gated.kernel_size, gated.head_hidden) == (12, 3, 5, 12)
    conv = from_run_config("conv1d", (8, 8, 1), 17, fields)
    assert (conv.filters, conv.num_layers, conv.kernel_size, conv.dropout_rate) == (12, 3, 5, 0.1)
    model = from_run_config("transformer", (10,), 7, fields)
    assert (model.model_dim, model.num_layers, model.num_heads) == (12, 3, 4)
    assert model.model_config()["arch"] == "transformer"
    with pytest.raises(ValueError, match="a MADE config needs arch 'made', got 'conv1d'"):
        made.MADE.from_config({**model.model_config(), "arch": "conv1d"})


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: made.MADE((4, 0, 1), 2), r"event_shape must be one of .* >= 1, got \(4, 0, 1\)"),
        (lambda: made.MADE("abc", 2), "event_shape must be a tuple of ints"),
        (lambda: made.MADE((4,), 1), "num_categories must be an integer >= 2, got 1"),
        (lambda: made.MADE((4,), 2, num_layers=0), "num_layers must be an integer >= 1"),
        (lambda: made.MADE((4,), 2, dropout_rate=1.0), r"dropout_rate must be in \[0, 1\)"),
        (
            lambda: gated_pixelcnn.GatedPixelCNN((8,), 2),
            r"event_shape must be one of \(height, width, channels\)",
        ),
        (lambda: gated_pixelcnn.GatedPixelCNN((4, 4, 1), 2, kernel_size=4), "must be odd"),
        (lambda: conv1d_arm.CausalConv1DARM((8,), 2, kernel_size=0), "kernel_size must be"),
        (lambda: conv1d_arm.CausalConv1DARM((8,), 2, filters=2.5), "filters must be an integer"),
        (
            lambda: transformer.Transformer((8,), 2, model_dim=10, num_heads=4),
            r"model_dim \(10\) must be a multiple of num_heads \(4\)",
        ),
    ],
)
def test_bad_arguments_get_one_clear_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ----------------------------------------------------------- training, export and serving


@pytest.mark.parametrize(
    "arch, options",
    [("made", dict(filters=16, num_layers=1)), ("transformer", dict(filters=8, num_heads=2))],
)
def test_a_family_trains_exports_and_serves_its_samples(arch, options, tmp_path):
    """launch/train.py's path (`training.train` with `model.arch`) and the serving contract."""
    logdir = str(tmp_path / "run")
    config = training.TrainConfig(
        dataset="digits", arch=arch, batch_size=8, steps=2, log_every=2, eval_every=2,
        checkpoint_every=2, eval_batches=1, seed=0, dropout_rate=0.0, **options,
    )  # fmt: skip
    metrics = training.train(config, logdir)
    assert metrics["step"] == 2 and np.isfinite(metrics["test_bpd"])
    model, _ = training.load_trained(logdir)
    assert model.model_config()["arch"] == arch
    eps = noise_lib.gumbel_noise((2, 8, 8, 1, 17), seed=4)
    expected = oracles.ancestral_reference(model, eps)
    served = exported_sampler.load_exported(
        export.export_trained(logdir, str(tmp_path / "exp"), name=arch)
    )
    for method in ("ancestral", "fpi"):
        result = served.sample(eps, method)
        np.testing.assert_array_equal(result.samples.numpy(), expected, err_msg=method)
