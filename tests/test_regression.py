"""Behaviour pinned before the architecture refactor: samples exactly, bpd and MSE up to rounding.

`tests/golden/behaviour.npz` was recorded from the code before the refactor (run this file as a
script to record it: `python tests/test_regression.py`). A refactor that changes structure only
must reproduce every sample, call count and convergence step in it exactly, and every trained
float (bpd, MSE) up to rounding (FLOAT_RTOL, below):

- a tiny ARM run (digits, T = 2 learned heads): its test and validation bpd after training, the
  samples, ARM calls and convergence of every method for fixed seeds (batch and scheduled loops),
  from the library (an export serves the library's samples bit for bit: tests/test_export.py and
  tests/test_export_incremental.py, so the pin holds no copy of them from an export);
- a tiny autoencoder run and an ARM on its latents: test MSE and bpd, and latent samples;
- the shipped `exported/digits/1`: the samples of every method for a fixed seed.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden", "behaviour.npz")
SHIPPED = os.path.join(os.path.dirname(HERE), "exported", "digits", "1")

_ARM = dict(
    dataset="digits",
    num_resnets=1,
    filters=8,
    batch_size=16,
    steps=10,
    log_every=5,
    eval_every=5,
    checkpoint_every=5,
    eval_batches=2,
    seed=0,
    dropout_rate=0.1,
    forecast_steps=2,
)
_AE = dict(
    dataset="digits",
    width=8,
    latent_channels=2,
    latent_categories=4,
    batch_size=16,
    steps=6,
    learning_rate=3e-3,
    log_every=3,
    eval_every=3,
    checkpoint_every=3,
    eval_batches=2,
    seed=0,
)
_LATENT_ARM = dict(
    dataset="digits",
    num_resnets=1,
    filters=8,
    batch_size=16,
    steps=6,
    log_every=3,
    eval_every=3,
    checkpoint_every=3,
    eval_batches=2,
    seed=1,
)


def _sample_arrays(prefix, sampler, methods, out, batch=3, seed=5):
    for method in methods:
        result = sampler.sample_from_seed(seed, batch, method)
        out[f"{prefix}/{method}/samples"] = result.samples.numpy()
        out[f"{prefix}/{method}/arm_calls"] = np.asarray(int(result.arm_calls))
        out[f"{prefix}/{method}/converged_at"] = result.converged_at.numpy()
    scheduled = sampler.sample_scheduled_from_seed(seed, 5, slots=2, method="fpi")
    out[f"{prefix}/scheduled_fpi/samples"] = scheduled.samples.numpy()
    out[f"{prefix}/scheduled_fpi/arm_calls"] = np.asarray(int(scheduled.arm_calls))


def _runs(workdir):
    """The library entry points, spelled for the code as it is now."""
    from tfps.serving import exported_sampler, loading
    from tfps.train import autoencoder_training, training

    def train_arm(logdir, **values):
        return training.train(training.TrainConfig(**values), logdir)

    def train_ae(logdir, **values):
        return autoencoder_training.train_autoencoder(
            autoencoder_training.AutoencoderConfig(**values), logdir
        )

    def sampler_of(path):
        return loading.load(path).sampler

    return train_arm, train_ae, sampler_of, exported_sampler.load_exported


def behaviour(workdir):
    """Everything pinned, as `{name: numpy array}`."""
    train_arm, train_ae, sampler_of, load_exported = _runs(workdir)
    out = {}
    arm_dir = os.path.join(workdir, "arm")
    metrics = train_arm(arm_dir, **_ARM)
    out["arm/test_bpd"] = np.asarray(metrics["test_bpd"])
    out["arm/validation_bpd"] = np.asarray(metrics["validation_bpd"])
    library = sampler_of(arm_dir)
    _sample_arrays("arm/library", library, library.methods, out)

    ae_dir, latent_dir = os.path.join(workdir, "ae"), os.path.join(workdir, "latent_arm")
    ae_metrics = train_ae(ae_dir, **_AE)
    out["ae/test_mse"] = np.asarray(ae_metrics["test_mse"])
    latent_metrics = train_arm(latent_dir, latents_from=ae_dir, **_LATENT_ARM)
    out["latent_arm/test_bpd"] = np.asarray(latent_metrics["test_bpd"])
    latent_sampler = sampler_of(latent_dir)
    _sample_arrays("latent_arm/library", latent_sampler, ("ancestral", "fpi"), out)

    shipped = load_exported(SHIPPED)
    _sample_arrays("shipped", shipped, shipped.methods, out, batch=2, seed=0)
    return out


# Trained floats (bpd, MSE) depend on the rounding of every kernel of 10 training steps: they move
# by ~1e-8 between CPU instruction sets (AVX-512 or not), and more between TF patch releases or
# on a GPU. A refactor that changes structure only moves them by rounding, never by 1e-4.
FLOAT_RTOL = 1e-4


def mismatches(golden, now):
    """The names whose arrays differ: integers (samples, calls) exactly, floats within FLOAT_RTOL.

    Samples are compared exactly: they are argmaxes of logits plus Gumbel noise, so a rounding
    difference changes one only at a near-tie (none on the CPUs this was run on).
    """
    wrong = []
    for name in golden:
        expected, actual = golden[name], now[name]
        if actual.dtype != expected.dtype or actual.shape != expected.shape:
            got, want = f"{actual.dtype}{actual.shape}", f"{expected.dtype}{expected.shape}"
            wrong.append(f"{name}: {got} != {want}")
        elif np.issubdtype(expected.dtype, np.floating):
            if not np.allclose(actual, expected, rtol=FLOAT_RTOL, atol=0):
                wrong.append(f"{name}: {actual} != {expected} (rtol {FLOAT_RTOL})")
        elif not np.array_equal(actual, expected):
            wrong.append(f"{name}: {np.sum(actual != expected)} of {expected.size} differ")
    return wrong


def test_mismatches_tolerates_rounding_but_not_a_change():
    golden = {"bpd": np.float32(3.941287), "samples": np.array([[0, 1]], np.int32)}
    rounded = {"bpd": np.float32(3.941287 + 1e-6), "samples": golden["samples"]}
    assert mismatches(golden, rounded) == []
    wrong = mismatches(golden, {"bpd": np.float32(3.95), "samples": np.array([[0, 0]], np.int32)})
    assert len(wrong) == 2
    assert mismatches(golden, {"bpd": golden["bpd"], "samples": np.zeros((1, 2), np.int64)})


def test_behaviour_is_unchanged_by_the_refactor(tmp_path):
    golden = np.load(GOLDEN)
    now = behaviour(str(tmp_path))
    assert sorted(now) == sorted(golden.files)
    assert mismatches({name: golden[name] for name in golden.files}, now) == []


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, os.path.dirname(HERE))
    with tempfile.TemporaryDirectory() as workdir:
        values = behaviour(workdir)
    os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
    np.savez(GOLDEN, **values)
    print(f"wrote {GOLDEN}: {len(values)} arrays")
    for name in ("arm/test_bpd", "arm/validation_bpd", "ae/test_mse", "latent_arm/test_bpd"):
        print(name, float(values[name]))
