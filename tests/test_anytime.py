"""Tests for tfps/sampling/prefix.py (anytime sampling): the first j codes of a sequence ARM,
sampled by every method, are the first j variables of the ancestral sample (the oracle of
tests/oracles.py), and decode as the prefix decoder does (Xu et al., ICLR 2021)."""

import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfps.data import builtin
from tfps.evaluation import frechet
from tfps.models import conv1d_arm, ordered_code, transformer
from tfps.sampling import noise as noise_lib
from tfps.sampling import predictive, prefix
from tfps.serving import decoder as decoder_lib
from tfps.serving import export, loading
from tfps.train import autoencoder_training, training

import oracles
from launchers import launch_here
from tiny_models import tiny_model

N, K = 6, 5


@pytest.fixture(scope="module", params=["transformer", "conv1d"])
def prior(request):
    keras.utils.set_random_seed(4)
    build = {
        "transformer": functools.partial(
            transformer.Transformer, model_dim=8, num_layers=1, num_heads=2
        ),
        "conv1d": functools.partial(conv1d_arm.CausalConv1DARM, filters=8, num_layers=2),
    }[request.param]
    return build((N,), K)


def test_every_method_samples_the_first_j_codes_of_the_ancestral_sample(prior):
    noise = noise_lib.gumbel_noise((3, N, K), 7)
    reference = oracles.ancestral_reference(prior, noise)
    for j in (1, 4):  # one code, and a prefix that stops inside the sequence
        sampler = prefix.prefix_sampler(prior, j)
        for method in sampler.methods:
            got = prefix.anytime_sample(prior, noise, j, method, sampler=sampler)
            np.testing.assert_array_equal(got.codes[:, :j], reference[:, :j], err_msg=method)
            np.testing.assert_array_equal(got.codes[:, j:], 0)
            assert got.num_codes == j and got.images is None
            assert 1 <= int(got.result.arm_calls) <= j


def _autoencoder():
    """A tiny channel autoencoder whose codebook maps are N(0, 1), far from zero maps."""
    keras.utils.set_random_seed(0)
    autoencoder = ordered_code.ChannelAutoencoder(
        (8, 8, 1), 17, width=8, latent_channels=N, latent_categories=K
    )
    autoencoder.codebook.assign(np.random.default_rng(0).normal(size=autoencoder.codebook.shape))
    return autoencoder


def _decoded_by_hand(autoencoder, codes, lengths, seed=0):
    """The decoder network G on hand-zeroed code maps: codes `[B, n]` with every code after the
    row's length randomised, the first ones' codebook maps gathered in numpy and the rest zero."""
    codes = np.array(codes)
    lengths = np.broadcast_to(lengths, len(codes))
    codebook, (h, w) = autoencoder.codebook.numpy(), autoencoder.map_shape
    rng = np.random.default_rng(seed)
    maps = np.zeros((len(codes), h, w, codes.shape[1]), np.float32)
    for b, j in enumerate(lengths):
        codes[b, j:] = rng.integers(0, len(codebook), codes.shape[1] - j)  # they are not read
        for i in range(j):
            maps[b, :, :, i] = codebook[codes[b, i]].reshape(h, w)
    return autoencoder.decoder(maps[..., None], training=False).numpy(), codes


def test_the_images_are_the_prefix_decoding_of_the_codes(prior):
    autoencoder = _autoencoder()
    noise = noise_lib.gumbel_noise((2, N, K), 1)
    got = prefix.anytime_sample(prior, noise, 2, "fpi", autoencoder=autoencoder)
    expected, randomised = _decoded_by_hand(autoencoder, got.codes, 2)
    assert got.images.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(got.images.numpy(), expected, atol=1e-6)
    # The prefix decoder of codes whose tail is random: the same images.
    again = autoencoder.decode(randomised, num_codes=2).numpy()
    np.testing.assert_allclose(again, expected, atol=1e-6)


def test_bad_lengths_and_image_arms_are_one_clear_error(prior):
    for bad in (0, N + 1, True):
        with pytest.raises(ValueError, match=rf"num_codes must be in 1..{N}"):
            prefix.prefix_sampler(prior, bad)
    with pytest.raises(ValueError, match="a prefix of a sequence ARM"):
        prefix.prefix_sampler(tiny_model((2, 2, 1), 2), 1)
    sampler = prefix.prefix_sampler(prior, 2)
    with pytest.raises(ValueError, match="samples 2 codes, not num_codes=3"):
        prefix.anytime_sample(prior, noise_lib.gumbel_noise((1, N, K), 0), 3, sampler=sampler)


def test_a_budget_of_calls_or_seconds_gives_an_exact_prefix_of_the_ancestral_sample(prior):
    noise = noise_lib.gumbel_noise((3, N, K), 11)
    reference = oracles.ancestral_reference(prior, noise)
    autoencoder = _autoencoder()
    sampler = prefix.prefix_sampler(prior, N)
    for method in ("ancestral", "fpi"):
        for calls in (1, 2, N):
            got = prefix.sample_within_budget(
                prior, noise, autoencoder, max_calls=calls, method=method, sampler=sampler
            )
            lengths = got.num_codes.numpy()
            assert int(got.result.arm_calls) <= calls
            # Ancestral sampling finishes one code per call; predictive sampling at least one.
            assert (lengths == calls).all() if method == "ancestral" else (lengths >= calls).all()
            for row, j in enumerate(lengths):
                np.testing.assert_array_equal(got.codes[row, :j], reference[row, :j])
                np.testing.assert_array_equal(got.codes[row, j:], 0)
            expected, _ = _decoded_by_hand(autoencoder, got.codes, lengths)
            np.testing.assert_allclose(got.images.numpy(), expected, atol=1e-6)
    # Seconds: the first call is always made; a tiny budget stops there, a large one never.
    tiny = prefix.sample_within_budget(prior, noise, max_seconds=1e-9, sampler=sampler)
    assert int(tiny.result.arm_calls) == 1 and (tiny.num_codes.numpy() >= 1).all()
    whole = prefix.sample_within_budget(prior, noise, max_seconds=1e6, sampler=sampler)
    np.testing.assert_array_equal(whole.codes, reference)
    assert (whole.num_codes.numpy() == N).all()


def test_a_budget_on_an_image_arm_keeps_the_final_prefix_of_the_ordering():
    model = tiny_model((3, 2, 2), 3)
    sampler = predictive.sampler_for_model(model)
    noise = noise_lib.gumbel_noise((2, 3, 2, 2, 3), 4)
    reference = oracles.ancestral_reference(model, noise).reshape(2, -1)
    result, prefix = sampler.sample_within_budget(noise, "fpi", max_calls=2)
    assert int(result.arm_calls) <= 2 and (prefix.numpy() >= 2).all()
    samples = result.samples.numpy().reshape(2, -1)
    for row, n in enumerate(prefix.numpy()):
        np.testing.assert_array_equal(samples[row, :n], reference[row, :n])
        np.testing.assert_array_equal(samples[row, n:], 0)


@pytest.mark.parametrize(
    "budget, message",
    [
        ({}, "needs max_calls"),
        ({"max_calls": 0}, "max_calls must be an int in 1"),
        ({"max_calls": 1.5}, "max_calls must be an int >= 1"),
        ({"max_calls": True}, "max_calls must be an int >= 1"),
        ({"max_seconds": 0.0}, "max_seconds must be finite and > 0"),
        ({"max_seconds": float("nan")}, "max_seconds must be finite and > 0"),
        ({"max_seconds": float("inf")}, "max_seconds must be finite and > 0"),
        ({"max_seconds": -1}, "max_seconds must be finite and > 0"),
        ({"max_seconds": "1"}, "max_seconds must be a number"),
    ],
)
def test_a_bad_budget_is_one_clear_error(prior, budget, message):
    noise = noise_lib.gumbel_noise((1, N, K), 0)
    with pytest.raises(ValueError, match=message):
        prefix.sample_within_budget(prior, noise, **budget)


def test_code_lengths_cover_the_fractions_without_repeats():
    assert ordered_code.code_lengths(16) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert ordered_code.code_lengths(6) == [1, 2, 3, 4, 5, 6]


def test_a_prefix_length_is_a_count_or_a_fraction_of_the_code():
    assert [ordered_code.num_codes_of(v, 10) for v in (3, "3", "0.6", "60%", "1.0", "0.01")] == [
        3, 3, 6, 6, 10, 1,
    ]  # fmt: skip
    for value, message in [
        ("0", "num_codes must be in 1..10"),
        ("11", "num_codes must be in 1..10"),
        ("1.5", r"a fraction of the code in \(0, 1\]"),
        ("0%", r"a fraction of the code in \(0, 1\]"),
        ("nan", r"a fraction of the code in \(0, 1\]"),
        ("six", "got 'six'"),
    ]:
        with pytest.raises(ValueError, match=message):
            ordered_code.num_codes_of(value, 10)


@pytest.fixture(scope="module")
def channel_prior(tmp_path_factory):
    """A 6-step ordered channel autoencoder on digits (6 codes of 8 maps) and a 4-step
    Transformer prior on its codes: the prior's run directory."""
    root = tmp_path_factory.mktemp("anytime")
    config = autoencoder_training.AutoencoderConfig(
        dataset="digits", width=8, latent_channels=N, latent_categories=8, quantization="channel",
        ordered=True, batch_size=16, steps=6, log_every=3, eval_every=3, checkpoint_every=3,
        eval_batches=1, seed=0,
    )  # fmt: skip
    autoencoder_training.train_autoencoder(config, str(root / "ae"))
    prior = training.TrainConfig(
        dataset="digits", arch="transformer", filters=8, num_layers=1, batch_size=16, steps=4,
        log_every=2, eval_every=2, checkpoint_every=2, eval_batches=1,
        latents_from=str(root / "ae"),
    )  # fmt: skip
    training.train(prior, str(root / "prior"))
    return str(root / "prior")


def test_the_launcher_draws_a_grid_and_a_table_per_code_length(channel_prior, tmp_path):
    out = tmp_path / "any"
    result = launch_here("launch.anytime", f"--model={channel_prior}", "--num_samples=3",
                         "--method=ancestral,ancestral_cached,fpi", "--classifier_steps=5",
                         f"--output_dir={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "anytime.json") as f:
        table = json.load(f)
    rows = table["rows"]
    assert [r["num_codes"] for r in rows] == ordered_code.code_lengths(N) == list(range(1, N + 1))
    for r in rows:  # the same codes whatever the method; one code per call for ancestral ones
        calls = {m: v["arm_calls"] for m, v in r["methods"].items()}
        assert calls["ancestral"] == calls["ancestral_cached"] == r["num_codes"]
        assert 1 <= calls["fpi"] <= r["num_codes"] and r["same_codes"]
    # The Frechet column, recomputed: the first j codes of the ancestral sample for seed 0, decoded
    # by hand, in the features of the launcher's classifier (digits, 5 steps, seed 0), by numpy.
    prior, decoder, _ = loading.load_code_prior(channel_prior)
    codes = oracles.ancestral_reference(prior, noise_lib.gumbel_noise((3, N, 8), 0))
    train, _ = builtin.load_numpy("digits", "train")
    classifier = frechet.train_classifier(train, builtin.labels("digits", "train"), 17, steps=5)
    reference = frechet.features(classifier, builtin.load_numpy("digits", "test")[0])
    for r in rows:
        images, _ = _decoded_by_hand(decoder.autoencoder, codes, r["num_codes"])
        levels = decoder.autoencoder.to_levels(np.clip(images, -1.0, 1.0)).numpy()
        expected = oracles.frechet_distance(reference, frechet.features(classifier, levels))
        assert r["frechet"] == pytest.approx(expected, rel=1e-3), r["num_codes"]
    assert "digit classifier (5 steps" in table["quality"]
    assert (out / "anytime.png").stat().st_size > 0
    assert "| 3 | 50% | 3 |" in (out / "anytime.md").read_text()
    bad = launch_here("launch.anytime", f"--model={channel_prior}", "--num_codes=0,2",
                      f"--output_dir={tmp_path / 'bad'}")  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert f"num_codes must be in 1..{N}" in bad.stderr and not (tmp_path / "bad").exists()


def test_the_sample_launcher_draws_the_first_codes_and_their_decoding(channel_prior, tmp_path):
    """`launch.sample --num_codes=0.5`: the first 3 of 6 codes of the ancestral samples of the
    whole code for the seed (equal as samples: the prior is autoregressive, so its logits at the
    first 3 positions ignore the rest), decoded from those 3 codes."""
    out = tmp_path / "prefix"
    result = launch_here("launch.sample", f"--model={channel_prior}", "--num_codes=0.5",
                         "--method=fpi", "--num_samples=3", "--batch_size=2", "--seed=5",
                         f"--output_dir={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the first 3 of 6 codes" in result.stdout
    codes = np.load(out / "samples_fpi_codes3.npy")
    prior, config = training.load_trained(channel_prior)
    whole = predictive.sampler_for_model(prior).sample_from_seed(5, 3, "ancestral").samples
    np.testing.assert_array_equal(codes, whole.numpy()[:, :3])
    decoder = decoder_lib.load_decoder(config)
    padded = np.pad(codes, [[0, 0], [0, N - 3]])
    expected = decoder.prefix_function(padded, tf.fill([3], 3)).numpy()
    np.testing.assert_allclose(np.load(out / "images_fpi_codes3.npy"), expected, atol=1e-5)
    assert (out / "images_fpi_codes3.png").stat().st_size > 0
    for flags, message in [
        (["--num_codes=7"], f"num_codes must be in 1..{N}"),
        (["--num_codes=half"], "a fraction of the code in (0, 1]"),
        (["--num_codes=2", "--method=ancestral_cached"], "unknown sampling method"),
        (["--num_codes=2", "--incremental"], "--incremental is for a PixelCNN"),
    ]:
        bad = launch_here("launch.sample", f"--model={channel_prior}", *flags,
                          f"--output_dir={tmp_path / 'bad'}")  # fmt: skip
        assert bad.returncode != 0 and "Traceback" not in bad.stderr, bad.stderr[-3000:]
        assert message in bad.stderr and not (tmp_path / "bad").exists()


def test_an_export_of_the_prior_samples_within_a_budget_of_calls_or_milliseconds(
    channel_prior, tmp_path
):
    """The anytime signature: the prefix finished within the budget (exact: the `sample`
    signature's codes for the same seed), its length, its prefix decoding; a bad budget is one
    InvalidArgumentError naming it."""
    path = export.export_trained(channel_prior, export_root=str(tmp_path), name="anytime")
    metadata = export.read_metadata(path)
    assert metadata["anytime"] and "sample_within_budget" in metadata["signatures"]
    loaded = tf.saved_model.load(path)
    budgeted = loaded.signatures["sample_within_budget"]
    seed, batch = tf.constant([0, 3], tf.int64), tf.constant(4)

    def within(calls, milliseconds, method="fpi"):
        return budgeted(
            seed=seed, batch_size=batch, max_calls=tf.constant(calls),
            max_milliseconds=tf.constant(milliseconds, tf.float32), method=tf.constant(method),
        )  # fmt: skip

    whole = loaded.signatures["sample"](seed=seed, batch_size=batch, method=tf.constant("fpi"))
    decoder = decoder_lib.load_decoder(training.load_trained(channel_prior)[1])
    for calls in (1, 3):
        out = within(calls, 1e6, "ancestral")
        lengths = out["num_codes"].numpy()
        assert (lengths == calls).all() and int(out["arm_calls"]) == calls
        np.testing.assert_array_equal(out["samples"][:, :calls], whole["samples"][:, :calls])
        np.testing.assert_array_equal(out["samples"][:, calls:], 0)
        expected = decoder.prefix_function(out["samples"], out["num_codes"])
        np.testing.assert_allclose(out["images"].numpy(), expected.numpy(), atol=1e-5)
    out = within(100, 1e-6)  # milliseconds: the first call only
    assert int(out["arm_calls"]) == 1 and (out["num_codes"].numpy() >= 1).all()
    out = within(100, 1e6)
    np.testing.assert_array_equal(out["samples"], whole["samples"])
    assert (out["num_codes"].numpy() == N).all()
    for calls, milliseconds, message in [
        (0, 10.0, "max_calls must be >= 1"),
        (2, 0.0, "max_milliseconds must be finite and > 0"),
        (2, float("nan"), "max_milliseconds must be finite and > 0"),
        (2, float("inf"), "max_milliseconds must be finite and > 0"),
    ]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            within(calls, milliseconds)
    # An image ARM's export has the other signatures only (test_export.py, saved_model_cli).
