"""Behaviour pinned before the architecture refactor: bit-for-bit samples, bpd and MSE.

`tests/golden/behaviour.npz` was recorded from the code before the refactor (run this file as a
script to record it: `python tests/test_regression.py`). A refactor that changes structure only
must reproduce every array and every float in it exactly:

- a tiny ARM run (digits, T = 2 learned heads): its test and validation bpd after training, the
  samples, ARM calls and convergence of every method for fixed seeds (batch and scheduled loops),
  from the library and from a fresh SavedModel export of the run;
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
    from tfps import autoencoder_training, export, loading, training

    def train_arm(logdir, **values):
        return training.train(training.TrainConfig(**values), logdir)

    def train_ae(logdir, **values):
        return autoencoder_training.train_autoencoder(
            autoencoder_training.AutoencoderConfig(**values), logdir
        )

    def sampler_of(path):
        return loading.load(path).sampler

    return train_arm, train_ae, sampler_of, export.export_trained, export.load_exported


def behaviour(workdir):
    """Everything pinned, as `{name: numpy array}`."""
    train_arm, train_ae, sampler_of, export_trained, load_exported = _runs(workdir)
    out = {}
    arm_dir = os.path.join(workdir, "arm")
    metrics = train_arm(arm_dir, **_ARM)
    out["arm/test_bpd"] = np.asarray(metrics["test_bpd"])
    out["arm/validation_bpd"] = np.asarray(metrics["validation_bpd"])
    library = sampler_of(arm_dir)
    _sample_arrays("arm/library", library, library.methods, out)
    exported_path = export_trained(arm_dir, os.path.join(workdir, "exported"), name="tiny")
    served = load_exported(exported_path)
    assert tuple(served.methods) == tuple(library.methods)
    _sample_arrays("arm/export", served, served.methods, out)

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


def test_behaviour_is_unchanged_by_the_refactor(tmp_path):
    golden = np.load(GOLDEN)
    now = behaviour(str(tmp_path))
    assert sorted(now) == sorted(golden.files)
    for name in golden.files:
        expected, actual = golden[name], now[name]
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, name
        np.testing.assert_array_equal(actual, expected, err_msg=name)


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
