"""Maximum-likelihood training of an ARM (`tfps.models.arms`), and loading a trained one.

The ARM is trained on the log-likelihood objective [1, eq. 1], reported as bits per dimension,

    bpd(x) = -log2 P_ARM(x) / d,        d = H * W * C,

with the optimisation of [1, Table 4] (`tfps.train.trainer`). The training step minimises a
weighted sum of named loss terms (`tfps.train.losses.LossTerm`), each a function of the model
outputs `(x, logits, h)`. Plain ARM training has one term, `bpd`. With `forecast_steps = T > 0` a
second term, `forecast`, trains T forecasting modules jointly [1, sec. 2.4, eq. 9] (Table 4:
weight 0.01):

    loss = bpd + 0.01 * sum_t mean_i KL[P_ARM(x_{i+t} | x_<i+t) || P_F^(t)(x_{i+t} | x_<i)]

in bits, the ARM side detached: the KL's gradient reaches the heads and, through the shared h,
the ARM's trunk, never the ARM's output distribution. The heads are the term's module,
checkpointed under `terms/forecast` and restored by `load_trained`. Evaluation
(`tfps.train.metrics`) reports bpd and, with heads, the forecast accuracy of the heads and of
fixed-point iteration on validation data with posterior noise
(`tfps.train.forecasting.forecast_accuracy`) to TensorBoard as `forecast_accuracy/<name>`.

The model is `config.arch`'s (`tfps.models.arms.ARCHITECTURES`, default the PixelCNN), built from
the config's `model` section for the data's event shape; a new model must pass
`tfps.check_autoregressive` before its first step (exhaustively for d <= 1024 variables, else at
1024 sampled positions; one random input, seeded by `config.seed`). Losses and heads see the
canonical image layout (`tfps.sampling.events`). The data is `tfps.data.open(config, encoder)`'s,
read and checked before anything is written; with `latents_from` it is a frozen autoencoder's
latents (`checked` takes the autoencoder's data fields, `tfps.train.latents.encoder_for` restores
its encoder). The run directory is `tfps.train.rundir`'s;
config.json also holds `model_config()` and, with heads, a `forecast` section. `train` resumes from
the latest checkpoint; `load_trained` rebuilds a trained model from config.json and a checkpoint for
sampling, export and benchmarks.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import math
import os

import keras
from absl import logging

from tfps import data
from tfps.models import arms, causality
from tfps.models import heads as heads_lib
from tfps.train import checkpoints, latents, losses, ordering_objectives, rundir, trainer
from tfps.train import config as config_lib
from tfps.train import metrics as metrics_lib

CONFIG_FORMAT = "tfps.train/1"
TrainConfig = config_lib.TrainConfig


# ----------------------------------------------------------------------------- run config


def forecast_config(config, model):
    """The `forecast` section of config.json: what the heads' weights mean (None without heads)."""
    if not config.forecast_steps:
        return None
    return {
        "steps": int(config.forecast_steps),
        "shared": bool(config.forecast_shared),
        "filters": int(config.forecast_filters or config.filters),
    }


def run_config(config, model, info):
    """The dict written to `logdir/config.json` (with a `forecast` section when there are heads)."""
    values = {
        "format": CONFIG_FORMAT,
        "train": config.to_dict(),
        "model": model.model_config(),
        "dataset": rundir.dataset_description(info),
    }
    heads = forecast_config(config, model)
    if heads:
        values["forecast"] = heads
    return values


def heads_from_config(forecast_section, model):
    """Forecasting heads for `model` from a config.json `forecast` section (None: no heads)."""
    if not forecast_section:
        return None
    return heads_lib.heads_for_model(
        model, forecast_section["steps"], forecast_section["filters"], forecast_section["shared"]
    )


# ----------------------------------------------------------------------------- training


def checked(config):
    """The validated `config` (a `TrainConfig`), with the autoencoder's dataset and bits when it
    models latents (`tfps.train.latents.with_autoencoder_data`); the model must fit them [1, sec.
    4.2]. Raises ValueError naming the problem (FileNotFoundError: no such autoencoder run)."""
    return latents.with_autoencoder_data(config.validate())


def train(config, logdir, loss_terms=(losses.BPD_TERM,)):
    """Trains (or resumes training of) an ARM; returns the final metrics.

    Resumable and refusing a logdir of another run like every trainer (`tfps.train.trainer.fit`).
    With `config.latents_from`, the ARM models the autoencoder's latents of its dataset
    (`checked`, `tfps.data.latents`). Ends with test bpd over the whole test split.

    Returns a dict with `step`, `test_bpd`, `validation_bpd`, `train_bpd` (mean over the last
    log interval of this session, None if no step ran), `steps_per_sec`, `start_step`,
    `train_seconds`, `dataset`, `uniform_bpd`, `checkpoint` (and `test_bits_per_image_dim` for
    latents); it is also written to `logdir/metrics.json`.
    """
    config = checked(config)
    if not loss_terms or loss_terms[0].name != "bpd":
        raise ValueError("loss_terms must start with the ARM's bpd term (BPD_TERM)")
    return trainer.fit(config, logdir, lambda run_dir: _task(config, run_dir, loss_terms))


def _task(config, logdir, loss_terms):
    """The ARM's `trainer.Task`, its run directory `logdir` started (built in the strategy's
    scope by `trainer.fit`)."""
    keras.utils.set_random_seed(config.seed)

    opened = data.open(config, encoder=latents.encoder_for(config))  # DataError before writing
    info, load_split, described = opened.info, opened.load, opened.description
    model = new_model(config, info)
    new_run_config = run_config(config, model, info)
    new_run_config["dataset"].update(described)
    if not checkpoints.checkpoint_prefixes(os.path.join(logdir, rundir.CHECKPOINT_DIR)):
        # A new model: refuse a leaking one before anything is written (tfps.models.causality).
        check = causality.quick_check(model, seed=config.seed, name=config.arch)
        logging.info("%s %s", config.arch, check.summary())
    rundir.start_run(logdir, new_run_config, arms.full_model_config)

    heads = heads_from_config(forecast_config(config, model), model)
    if heads is not None:
        loss_terms = tuple(loss_terms) + (losses.forecast_loss_term(heads, config.forecast_weight),)
    modules = {t.name: t.module for t in loss_terms if t.module is not None}

    orderings = ordering_objectives.num_orderings(model)  # > 1: a family (FARM)
    evaluate = metrics_lib.arm_evaluation(config, model, info.image_shape, heads)

    def summarize(metrics):
        metrics.update(dataset=info.name, uniform_bpd=math.log2(info.num_categories))
        if "dimension_reduction" in described:  # latents: the paper's bits per image dimension
            reduction = described["dimension_reduction"]
            metrics["test_bits_per_image_dim"] = metrics["test_bpd"] / reduction
        uniform = metrics["uniform_bpd"]
        return metrics, f"test bpd {metrics['test_bpd']:.4f} (uniform: {uniform:.4f})"

    return trainer.Task(
        model=model,
        loss=lambda x, seed, step: (
            losses.compute_loss(model, x, loss_terms, training=True, seed=seed)
            if orderings == 1
            else ordering_objectives.objective(model, x, config.ordering_objective, seed)
        ),
        evaluate=evaluate,
        load_split=load_split,
        metric="bpd",
        modules=modules,
        description=f"{info.name}: {rundir.described(new_run_config['model'])}",
        summarize=summarize,
    )


def new_model(config, info):
    """The untrained model of `config.arch` for the data of `info` (a `DatasetInfo`): its factory
    gets `event_shape`, `num_categories` and every field of the config's `model` section."""
    model_config = {
        **config.model_fields(),
        "event_shape": list(info.image_shape),
        "num_categories": int(info.num_categories),
    }
    try:
        return arms.build_model(model_config)
    except TypeError as e:
        raise ValueError(f"cannot build model arch {config.arch!r}: {e}") from e


def load_trained(logdir_or_checkpoint):
    """Rebuilds a trained ARM (`tfps.models.arms.build_model`): `(model, config)`.

    `logdir_or_checkpoint` is a run directory (its newest checkpoint that restores: a corrupt
    one is skipped with a warning) or a checkpoint prefix such as `logdir/checkpoints/ckpt-1000`.
    `config` is the parsed config.json plus `checkpoint` (the restored prefix), `step` (its
    training step), `logdir` (the run) and `forecast_heads`: the restored forecasting heads of a
    run trained with `forecast_steps > 0` (pass them to `sampling.sampler_for_model(...,
    heads=...)`), else None. Optimizer state is
    not loaded. Raises CheckpointNotFoundError (a FileNotFoundError) when something is missing
    and CheckpointError (a ValueError) when the checkpoint is corrupt or does not fit the model,
    naming the path.
    """
    logdir, prefix = rundir.resolve_checkpoint(logdir_or_checkpoint)
    config = rundir.read_config(logdir)
    path = os.path.join(logdir, rundir.CONFIG_FILE)
    try:
        model = arms.build_model(config["model"])
    except (TypeError, ValueError) as e:
        raise rundir.CheckpointError(f"{path}: cannot build the model ({e})") from e
    try:
        heads = heads_from_config(config.get("forecast"), model)
    except (KeyError, TypeError, ValueError) as e:
        raise rundir.CheckpointError(f"{path}: cannot build the forecasting heads ({e})") from e
    parts = {"model": model}
    if heads is not None:
        parts["terms"] = {"forecast": heads}
    if os.path.isdir(logdir_or_checkpoint):
        step, prefix = checkpoints.restore_for_inference(os.path.dirname(prefix), **parts)
    else:
        step, _ = checkpoints.restore_for_inference(prefix, **parts)
    config = dict(config, checkpoint=prefix, step=step, logdir=logdir, forecast_heads=heads)
    return model, config
