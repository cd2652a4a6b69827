"""Training and loading the discrete autoencoder [1, sec. 4.2, Appendix A.3].

`train_autoencoder` trains the autoencoder on the reconstruction MSE (the paper's first stage,
before the ARM prior exists) with the one resumable loop of `tfps.train.trainer`; its run directory
is `tfps.train.rundir`'s, with config.json of format `tfps.models.autoencoder/1`, TensorBoard
scalars (train/validation/test `mse`, `categories_used`) and metrics.json. `load_autoencoder`
rebuilds a trained one; `tfps.train.latents.load_encoder` hands its frozen encoder to
`tfps.data.open`, which makes the ARM's data of its latents (`tfps.data.latents`).

With `quantization="channel"` the model is anytime sampling's channel-wise quantised autoencoder
[2] (`tfps.models.ordered_code`), trained on the VQ-VAE objective, on a random code prefix per
batch when `ordered` [2]; its evaluation adds the reconstruction MSE from the first
j = ceil(k n / 8) of its n codes, k = 1..8, as `mse_prefix/k_8` (the curve of [2, Figure 3]).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.

[2]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfps import data
from tfps.models import autoencoder as autoencoder_lib
from tfps.models import ordered_code
from tfps.train import checkpoints, rundir, trainer
from tfps.train import config as config_lib

AUTOENCODER_FORMAT = "tfps.models.autoencoder/1"
AutoencoderConfig = config_lib.AutoencoderConfig


# ----------------------------------------------------------------------------- evaluation


PREFIX_METRIC = "mse_prefix/"  # + "k_8": the MSE from the first k/8 of a channel code


def prefix_metrics(model):
    """`{metric name: j}`: the prefix lengths a channel-wise quantised model is evaluated at
    (`PREFIX_METRIC` + "k_8", j = ceil(k n / 8)); `{}` for the spatial one."""
    if getattr(model, "quantization", ordered_code.SPATIAL) != ordered_code.CHANNEL:
        return {}
    lengths = ordered_code.prefix_lengths(model.latent_channels)
    return {PREFIX_METRIC + name: j for name, j in lengths.items()}


def make_mse_fn(model):
    """A traced `x [B, H, W, C] -> (sum over images of the per-image MSE, latents, B, {prefix
    metric: its sum over images})`, the last only for a channel-wise quantised model."""
    prefixes = prefix_metrics(model)

    @tf.function(reduce_retracing=True)
    def mse_fn(x):
        target = model.normalise(x)
        z = model.encode(x, training=False)

        def summed_mse(x_hat):
            return tf.reduce_sum(tf.reduce_mean(tf.square(x_hat - target), axis=[1, 2, 3]))

        by_prefix = {name: summed_mse(model.decode(z, j)) for name, j in prefixes.items()}
        return summed_mse(model.decode(z, training=False)), z, tf.shape(x)[0], by_prefix

    return mse_fn


def prefix_pictures(model, dataset, count=8):
    """`{"prefix_reconstructions": uint8 [1, count * H, 9 * W, C]}` for a channel code: one row per
    image of `dataset` (the first `count`), its decodings from 1/8 ... 8/8 of the code
    (`ordered_code.prefix_lengths`), then the image itself; `{}` for a spatial code."""
    if getattr(model, "quantization", None) != ordered_code.CHANNEL:
        return {}
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    x = tf.cast(next(iter(dataset.batch(count))), tf.int32)
    codes = model.encode(x)
    lengths = ordered_code.prefix_lengths(model.latent_channels).values()
    columns = [model.decode(codes, num_codes=j) for j in lengths] + [model.normalise(x)]
    grid = tf.clip_by_value(tf.stack(columns, axis=1), -1.0, 1.0)  # [n, 9, H, W, C]
    n, cols, h, w, c = grid.shape
    grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]), [1, n * h, cols * w, c])
    return {"prefix_reconstructions": tf.cast(tf.round((grid + 1.0) * 127.5), tf.uint8)}


def evaluate(model, dataset, batch_size, max_batches=None, mse_fn=None):
    """Reconstruction MSE (inference mode, [-1, 1] scale) and latent usage on `dataset`.

    `dataset`: single int images `[H, W, C]` (tf.data.Dataset or `[N, H, W, C]` array). Returns
    `{"mse": mean over images, "categories_used": fraction of the c * K (channel, category) pairs
    that some latent takes}`, and for a channel-wise quantised model the MSE from each code
    prefix (`prefix_metrics`).
    """
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    mse_fn = mse_fn or make_mse_fn(model)
    total, count, by_prefix = 0.0, 0, dict.fromkeys(prefix_metrics(model), 0.0)
    used = np.zeros((model.latent_channels, model.latent_categories), bool)
    for x in batches.prefetch(tf.data.AUTOTUNE):
        mse_sum, z, n, prefix_sums = mse_fn(tf.cast(x, tf.int32))
        total += float(mse_sum)
        count += int(n)
        for name, value in prefix_sums.items():
            by_prefix[name] += float(value)
        z = z.numpy().reshape(-1, model.latent_channels)
        for channel in range(model.latent_channels):
            used[channel, np.unique(z[:, channel])] = True
    if count == 0:
        raise ValueError("evaluate got an empty dataset")
    values = {"mse": total / count, "categories_used": float(used.mean())}
    return {**values, **{name: value / count for name, value in by_prefix.items()}}


# ----------------------------------------------------------------------------- training


def new_autoencoder(config, info):
    """The untrained autoencoder of `config` (an `AutoencoderConfig`) for the images of `info`."""
    cls = autoencoder_lib.DiscreteAutoencoder
    if config.quantization == ordered_code.CHANNEL:
        cls = ordered_code.ChannelAutoencoder
    return cls(
        info.image_shape, info.num_categories, config.width, config.latent_channels,
        config.latent_categories,
    )  # fmt: skip


def training_loss(config, model):
    """The task's `loss(x, seed, step)`: MSE (eq. 11 without the rate) for the spatial code; the
    VQ-VAE objective, ordered or not, for the channel-wise one (`tfps.models.ordered_code`)."""
    if config.quantization == ordered_code.CHANNEL:
        return ordered_code.training_loss(
            model, config.ordered, config.commitment, config.ordered_from_step
        )

    def loss(x, seed, step):
        del seed, step  # the autoencoder draws no noise and has no schedule
        total, values = autoencoder_lib.autoencoder_loss(model, x, training=True)
        return tf.cast(total, tf.float32), values  # float32 under a mixed-precision policy too

    return loss


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
    model = new_autoencoder(config, info)
    new_run_config = run_config(config, model, info)
    new_run_config["dataset"].update(opened.description)
    rundir.start_run(logdir, new_run_config)
    mse_fn = make_mse_fn(model)

    def summarize(metrics):
        metrics.update(dataset=info.name, latent_shape=list(model.latent_shape))
        used = metrics["test_categories_used"]
        return metrics, f"test mse {metrics['test_mse']:.5f} (categories used {used:.3f})"

    return trainer.Task(
        model=model,
        loss=training_loss(config, model),
        evaluate=lambda split, ds, max_batches, step: evaluate(
            model, ds, config.batch_size, max_batches, mse_fn
        ),
        load_split=opened.load,
        metric="mse",
        description=f"the autoencoder on {info.name}: {new_run_config['model']}",
        summarize=summarize,
        images=lambda split, ds: prefix_pictures(model, ds),
    )


# ----------------------------------------------------------------------------- loading


def load_autoencoder(logdir_or_checkpoint):
    """Rebuilds a trained autoencoder: `(model, config)`, like `tfps.train.training.load_trained`.

    `config` is the run's config.json plus `checkpoint` (the restored prefix), `step` and
    `logdir`. Raises CheckpointNotFoundError / CheckpointError (naming the path), also when the
    run is not an autoencoder run.
    """
    model, config, logdir, prefix = built_autoencoder(logdir_or_checkpoint)
    step, _ = checkpoints.restore_for_inference(prefix, model=model)
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
        model = ordered_code.autoencoder_from_config(config["model"])
    except (TypeError, ValueError) as e:
        raise rundir.CheckpointError(f"{path}: cannot build the autoencoder ({e})") from e
    return model, config, logdir, prefix
