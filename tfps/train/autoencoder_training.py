"""Training and loading the discrete autoencoder [1, sec. 4.2, Appendix A.3].

`train_autoencoder` trains the autoencoder on the reconstruction MSE (the paper's first stage,
before the ARM prior exists) with the one resumable loop of `tfps.train.trainer`; its run directory
is `tfps.train.rundir`'s, with config.json of format `tfps.models.autoencoder/1`, TensorBoard
scalars (train/validation/test `mse`, `categories_used`) and metrics.json. `load_autoencoder`
rebuilds a trained one; `tfps.train.latents.load_encoder` hands its frozen encoder to
`tfps.data.open`, which makes the ARM's data of its latents (`tfps.data.latents`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfps import data
from tfps.models import autoencoder as autoencoder_lib
from tfps.train import config as config_lib
from tfps.train import rundir, trainer

AUTOENCODER_FORMAT = "tfps.models.autoencoder/1"
AutoencoderConfig = config_lib.AutoencoderConfig


# ----------------------------------------------------------------------------- evaluation


def make_mse_fn(model):
    """A traced `x [B, H, W, C] -> (sum over images of the per-image MSE, latents, B)`."""

    @tf.function(reduce_retracing=True)
    def mse_fn(x):
        logits = model.encoder(model.normalise(x), training=False)
        z = tf.argmax(logits, axis=-1, output_type=tf.int32)
        x_hat = model.decode(z, training=False)
        per_image = tf.reduce_mean(tf.square(x_hat - model.normalise(x)), axis=[1, 2, 3])
        return tf.reduce_sum(per_image), z, tf.shape(x)[0]

    return mse_fn


def evaluate(model, dataset, batch_size, max_batches=None, mse_fn=None):
    """Reconstruction MSE (inference mode, [-1, 1] scale) and latent usage on `dataset`.

    `dataset`: single int images `[H, W, C]` (tf.data.Dataset or `[N, H, W, C]` array). Returns
    `{"mse": mean over images, "categories_used": fraction of the c * K (channel, category) pairs
    that some latent takes}`.
    """
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    mse_fn = mse_fn or make_mse_fn(model)
    total, count = 0.0, 0
    used = np.zeros((model.latent_channels, model.latent_categories), bool)
    for x in batches.prefetch(tf.data.AUTOTUNE):
        mse_sum, z, n = mse_fn(tf.cast(x, tf.int32))
        total += float(mse_sum)
        count += int(n)
        z = z.numpy().reshape(-1, model.latent_channels)
        for channel in range(model.latent_channels):
            used[channel, np.unique(z[:, channel])] = True
    if count == 0:
        raise ValueError("evaluate got an empty dataset")
    return {"mse": total / count, "categories_used": float(used.mean())}


# ----------------------------------------------------------------------------- training


def run_config(config, model, info):
    """The dict written to an autoencoder run's config.json."""
    return {
        "format": AUTOENCODER_FORMAT,
        "train": config.to_dict(),
        "model": model.model_config(),
        "dataset": rundir.dataset_description(info),
    }


def train_autoencoder(config, logdir):
    """Trains (or resumes) the discrete autoencoder on MSE (the paper's first stage).

    Resumable and refusing a logdir of another run like every trainer (`tfps.train.trainer.fit`).
    Returns the metrics, also written to `logdir/metrics.json`: `step`, `test_mse`,
    `validation_mse`, `train_mse`, `test_categories_used`, `steps_per_sec`, `train_seconds`,
    `dataset`, `latent_shape`, `checkpoint`.
    """
    config.validate()
    return trainer.fit(config, logdir, lambda run_dir: _task(config, run_dir))


def _task(config, logdir):
    """The autoencoder's `trainer.Task`, its run directory `logdir` started (built in the
    strategy's scope by `trainer.fit`)."""
    keras.utils.set_random_seed(config.seed)
    opened = data.open(config)  # DataError for bad data, before anything is written
    info = opened.info
    model = autoencoder_lib.DiscreteAutoencoder(
        info.image_shape, info.num_categories, config.width, config.latent_channels,
        config.latent_categories,
    )  # fmt: skip
    new_run_config = run_config(config, model, info)
    new_run_config["dataset"].update(opened.description)
    rundir.start_run(logdir, new_run_config)
    mse_fn = make_mse_fn(model)

    def loss(x, seed):
        del seed  # the autoencoder draws no noise
        total, values = autoencoder_lib.autoencoder_loss(model, x, training=True)
        return tf.cast(total, tf.float32), values  # float32 under a mixed-precision policy too

    def summarize(metrics):
        metrics.update(dataset=info.name, latent_shape=list(model.latent_shape))
        used = metrics["test_categories_used"]
        return metrics, f"test mse {metrics['test_mse']:.5f} (categories used {used:.3f})"

    return trainer.Task(
        model=model,
        loss=loss,
        evaluate=lambda split, ds, max_batches, step: evaluate(
            model, ds, config.batch_size, max_batches, mse_fn
        ),
        load_split=opened.load,
        metric="mse",
        description=f"the autoencoder on {info.name}: {new_run_config['model']}",
        summarize=summarize,
    )


# ----------------------------------------------------------------------------- loading


def load_autoencoder(logdir_or_checkpoint):
    """Rebuilds a trained autoencoder: `(model, config)`, like `tfps.train.training.load_trained`.

    `config` is the run's config.json plus `checkpoint` (the restored prefix), `step` and
    `logdir`. Raises CheckpointNotFoundError / CheckpointError (naming the path), also when the
    run is not an autoencoder run.
    """
    model, config, logdir, prefix = built_autoencoder(logdir_or_checkpoint)
    step = rundir.restore_for_inference(prefix, model=model)
    return model, dict(config, checkpoint=prefix, step=step, logdir=logdir)


def built_autoencoder(logdir_or_checkpoint):
    """`(model, config.json, logdir, checkpoint prefix)` of an autoencoder run, the model built
    from the config but its weights not restored. Raises like `load_autoencoder`."""
    logdir, prefix = rundir.resolve_checkpoint(logdir_or_checkpoint)
    config = rundir.read_config(logdir)
    path = os.path.join(logdir, rundir.CONFIG_FILE)
    if config.get("format") != AUTOENCODER_FORMAT:
        raise rundir.CheckpointError(
            f"{path}: not an autoencoder run (format {config.get('format')!r}, expected "
            f"{AUTOENCODER_FORMAT!r}); train one with launch/train_autoencoder.py"
        )
    try:
        model = autoencoder_lib.build_autoencoder(config["model"])
    except (TypeError, ValueError) as e:
        raise rundir.CheckpointError(f"{path}: cannot build the autoencoder ({e})") from e
    return model, config, logdir, prefix
