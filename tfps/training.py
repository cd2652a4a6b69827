"""Maximum-likelihood training of the PixelCNN ARM, with resumable checkpoints.

Seed 000, section 4.1 and Appendix A / Table 4: the ARM is trained on the log-likelihood objective
(eq. 1), reported as bits per dimension,

    bpd(x) = -log2 P_ARM(x) / d,        d = H * W * C,

with Adam (learning rate 2e-4, decayed exponentially by 0.999995 every step), batch size 64,
weight decay 1e-6, dropout 0.5; 5 gated resnets of 162 filters (binary MNIST: 2 of 60).

The training step minimises a weighted sum of named loss terms (`LossTerm`), each a function of
the model outputs `(x, logits, h)`. Plain ARM training has one term, `bpd`. With
`forecast_steps = T > 0` a second term, `forecast`, trains T forecasting modules jointly
(section 2.4, eq. 9; Table 4 "forecasting loss weight" 0.01):

    loss = bpd + 0.01 * sum_t mean_i KL[P_ARM(x_{i+t} | x_<i+t) || P_F^(t)(x_{i+t} | x_<i)]

in bits, the ARM side detached: the KL's gradient reaches the heads and, through the shared h,
the ARM's trunk, never the ARM's output distribution. The heads are the term's module,
checkpointed under `terms/forecast` and restored by `load_trained`. At every evaluation the
forecast accuracy of the heads and of fixed-point iteration on validation data with posterior
noise (`tfps.forecast.forecast_accuracy`) goes to TensorBoard as `forecast_accuracy/<name>`.

On disk a run directory `logdir` holds

    config.json          TrainConfig, model_config() and the dataset description
    checkpoints/ckpt-N   tf.train.Checkpoint(step, model, optimizer[, terms]) every N steps
    train/, validation/, test/   TensorBoard event files (tf.summary scalars)
    metrics.json         final metrics (step, train/validation/test bpd, steps/s)

`train` resumes from the latest checkpoint in `logdir`; `load_trained` rebuilds a trained model
from `config.json` and a checkpoint for sampling, export and benchmarks.
"""
import dataclasses
import json
import math
import os
import time
from typing import Callable

from absl import logging
import numpy as np
import tensorflow as tf
import keras

from tfps import data as tfps_data
from tfps import forecast as tfps_forecast
from tfps import noise as noise_lib
from tfps import pixelcnn

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"
CONFIG_FORMAT = "tfps.train/1"


class CheckpointError(ValueError):
    """A run directory or checkpoint is missing, incomplete, corrupt or incompatible."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The run directory, its config.json or its checkpoint does not exist."""


class ConfigConflictError(ValueError):
    """`train` was pointed at a run directory that holds a different model or dataset."""


def _field(default, help_text):
    return dataclasses.field(default=default, metadata={"help": help_text})


class DictConfig:
    """`to_dict` / `from_dict` for the config dataclasses written to config.json."""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict, ignoring keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclasses.dataclass
class TrainConfig(DictConfig):
    """Everything that defines a training run (the launcher exposes each field as a flag).

    Defaults follow Table 4 (Default column); binary MNIST used 2 resnets of 60 filters. The
    weight decay is PyTorch-Adam style, as in the paper's PyTorch code: `weight_decay * w` is added
    to the gradient of every trainable weight (biases included) before the Adam moments, i.e. an
    L2 penalty inside Adam, not decoupled AdamW decay.
    """
    dataset: str = _field(tfps_data.DEFAULT_DATASET, "Dataset name (see tfps.data.DATASETS).")
    bits: int | None = _field(None, "Bit depth to quantise the data to (None: the dataset's own).")
    data_dir: str | None = _field(None, "Directory for downloaded datasets (None: default).")
    num_resnets: int = _field(5, "Gated resnets per PixelCNN stream (paper: 5; binary MNIST: 2).")
    filters: int = _field(162, "Filters per layer (paper: 162; binary MNIST: 60).")
    num_scales: int = _field(1, "Resolutions of the PixelCNN++ hierarchy (paper: 3; 1: one "
                                "scale, no down pass).")
    dropout_rate: float = _field(0.5, "Dropout rate inside the gated resnets (paper: 0.5).")
    head_hidden: int | None = _field(None, "Hidden units per channel of the channel head "
                                              "(None: filters).")
    forecast_steps: int = _field(0, "Learned forecasting modules T trained with the ARM "
                                    "(section 2.4; Table 4: 20 for binary MNIST, 1 or 5 "
                                    "otherwise); 0: none.")
    forecast_shared: bool = _field(True, "Forecasting heads on the ARM's representation h; "
                                         "false: the Table 3 ablation without representation "
                                         "sharing (heads on x and noise, method "
                                         "learned_unshared).")
    forecast_filters: int | None = _field(None, "Width of the forecasting heads (Table 4: as "
                                                "the ARM; None: filters).")
    forecast_weight: float = _field(0.01, "Weight of the forecasting KL (eq. 9) in the loss "
                                          "(Table 4: 0.01).")
    batch_size: int = _field(64, "Training batch size (paper: 64).")
    steps: int = _field(200000, "Total optimisation steps, counted across resumes (paper: 200000).")
    learning_rate: float = _field(2e-4, "Initial Adam learning rate (paper: 2e-4).")
    lr_decay: float = _field(0.999995, "Learning rate decay factor applied every step "
                                       "(exponential; paper: 0.999995).")
    weight_decay: float = _field(1e-6, "PyTorch-Adam style L2 weight decay added to the gradients "
                                       "(paper: 1e-6).")
    seed: int = _field(0, "Seed for weight initialisation, dropout and data shuffling.")
    checkpoint_every: int = _field(1000, "Save a checkpoint every this many steps "
                                         "(and at the end).")
    eval_every: int = _field(1000, "Compute validation bpd every this many steps.")
    log_every: int = _field(100, "Log train bpd, steps/s and ETA every this many steps.")
    keep_checkpoints: int = _field(3, "Number of most recent checkpoints to keep.")
    eval_batches: int | None = _field(50, "Batches of the validation split used for validation "
                                             "bpd (None: the whole split).")
    latents_from: str | None = _field(None, "Autoencoder run directory or checkpoint prefix "
                                            "(launch/train_autoencoder.py): train the ARM on its "
                                            "frozen encoder's latents of the autoencoder's "
                                            "dataset (tfps.latent; seed 000 section 4.2).")

    def validate(self):
        """Raises ValueError naming the first invalid field. Returns self."""
        for field in dataclasses.fields(self):
            check_field(field.name, getattr(self, field.name))
        info = tfps_data.dataset_info(self.dataset, self.bits)  # ValueError: unknown name / bits.
        return self.check_fits(info)

    def check_fits(self, info):
        """Raises ValueError unless the model fits the variables it models (`info`, a
        `DatasetInfo`: the dataset's images, or an autoencoder's latents): `num_scales` halvings
        leave at least one pixel, and `forecast_steps` is below d. Returns self."""
        shape, what = info.image_shape, info.name.replace(":latents", "'s latents")
        most = pixelcnn.max_num_scales(shape)
        if self.num_scales > most:
            raise ValueError(f"num_scales={self.num_scales} is too many for {what}: "
                             f"{shape[0]}x{shape[1]} allows at most {most}, each scale halves it")
        d = int(np.prod(shape))
        if self.forecast_steps >= d:
            raise ValueError(f"forecast_steps must be below d = {d} for {what}, "
                             f"got {self.forecast_steps}")
        return self



_AT_LEAST_ONE = ("filters", "batch_size", "steps", "checkpoint_every", "eval_every",
                 "log_every", "keep_checkpoints")
_RANGES = {  # name: (predicate, what the value must be)
    "num_resnets": (lambda v: v >= 0, ">= 0"),
    "num_scales": (lambda v: v >= 1, ">= 1"),
    **{name: (lambda v: v >= 1, ">= 1") for name in _AT_LEAST_ONE},
    "head_hidden": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "forecast_steps": (lambda v: v >= 0, ">= 0"),
    "forecast_filters": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "forecast_weight": (lambda v: v >= 0.0, ">= 0"),
    "eval_batches": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "dropout_rate": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "learning_rate": (lambda v: v > 0.0, "> 0"),
    "lr_decay": (lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
    "weight_decay": (lambda v: v >= 0.0, ">= 0"),
    "dataset": (lambda v: v in tfps_data.DATASETS,
                "one of " + ", ".join(repr(d) for d in tfps_data.DATASETS)),
}


def check_field(name, value):
    """Raises ValueError if `value` is not valid for TrainConfig field `name` on its own.

    (Whether `bits` suits the dataset is checked by `TrainConfig.validate`.)
    """
    if name in _RANGES:
        predicate, requirement = _RANGES[name]
        if not predicate(value):
            raise ValueError(f"{name} must be {requirement}, got {value!r}")


# ----------------------------------------------------------------------------- loss terms


@dataclasses.dataclass(frozen=True)
class ModelOutputs:
    """What a loss term sees: x `[B, H, W, C]`, logits `[B, H, W, C, K]`, h `[B, H, W, F]`, and a
    stateless seed (int32 `[2]`, different every training step) for terms that draw noise."""
    x: tf.Tensor
    logits: tf.Tensor
    h: tf.Tensor
    training: bool
    seed: tf.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One named term of the training objective: total = sum_t weight_t * fn_t(outputs).

    `fn(outputs: ModelOutputs) -> scalar`. `module` (optional, a Keras layer or tf.Module) holds the
    term's own trainable weights, e.g. a forecasting head on h; they are optimised with the model
    and checkpointed under `terms/<name>`.
    """
    name: str
    fn: Callable[[ModelOutputs], tf.Tensor]
    weight: float = 1.0
    module: tf.Module | None = None


def mean_bpd(outputs):
    """Mean over the batch of -log2 P_ARM(x) / d (eq. 1 in bits per dimension). -> scalar."""
    return tf.reduce_mean(pixelcnn.bits_per_dim(outputs.logits, outputs.x))


BPD_TERM = LossTerm("bpd", mean_bpd, 1.0)


def forecast_loss_term(heads, weight=0.01):
    """The `forecast` term: sum over the T modules of eq. 9's KL in bits (`forecast_kl`).

    Shared heads read h; unshared ones (Table 3 ablation) read x and posterior noise
    eps ~ p(eps | x) drawn from the detached ARM logits (Appendix B), a fresh draw every step.
    """
    def forecast_loss(outputs):
        noise = None
        if not heads.shares_representation:
            seed = (outputs.seed if outputs.seed is not None
                    else tf.constant([0, 0], tf.int32))
            noise = noise_lib.posterior_gumbel_noise(tf.stop_gradient(outputs.logits),
                                                     outputs.x, seed)
        logits = tfps_forecast.head_logits(heads, outputs.x, outputs.h, noise)
        return tf.reduce_sum(tfps_forecast.forecast_kl(logits, outputs.logits))
    return LossTerm("forecast", forecast_loss, weight, heads)


def compute_loss(model, x, terms=(BPD_TERM,), training=True, seed=None):
    """Runs the model once and evaluates every term. -> `(total, {name: value})`."""
    logits, h = model(x, training=training)
    outputs = ModelOutputs(x=x, logits=logits, h=h, training=training, seed=seed)
    values = {term.name: term.fn(outputs) for term in terms}
    total = tf.add_n([tf.cast(term.weight, tf.float32) * values[term.name] for term in terms])
    return total, values


# ----------------------------------------------------------------------------- evaluation


def evaluate_bpd(model, dataset, batch_size, max_batches=None):
    """Mean bits per dimension of `model` (`training=False`) over single images in `dataset`.

    `dataset`: a tf.data.Dataset of int `[H, W, C]` images (or an `[N, H, W, C]` numpy array);
    batched here. `max_batches` limits the evaluation to the first batches. The mean is over
    images, not over batch means, so a short last batch is weighted correctly.
    """
    return _evaluate(make_eval_fn(model), model.image_shape, dataset, batch_size, max_batches)


def make_eval_fn(model):
    """A traced `x [B, H, W, C] -> (sum of per-image bpd, B)` with `training=False`."""
    @tf.function(reduce_retracing=True)
    def eval_fn(x):
        logits, _ = model(x, training=False)
        return tf.reduce_sum(pixelcnn.bits_per_dim(logits, x)), tf.shape(x)[0]
    return eval_fn


def _evaluate(eval_fn, image_shape, dataset, batch_size, max_batches):
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_batches is not None and int(max_batches) < 1:
        raise ValueError(f"max_batches must be >= 1 (or None), got {max_batches}")
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    spec = dataset.element_spec
    if not (spec.dtype.is_integer and tuple(spec.shape) == tuple(image_shape)):
        raise ValueError(f"evaluate_bpd needs single integer images of shape {tuple(image_shape)}, "
                         f"got a dataset of {spec.dtype.name} {tuple(spec.shape)}")
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    total, count = 0.0, 0
    for x in batches.prefetch(tf.data.AUTOTUNE):
        bpd_sum, n = eval_fn(tf.cast(x, tf.int32))
        total += float(bpd_sum)
        count += int(n)
    if count == 0:
        raise ValueError("evaluate_bpd got an empty dataset")
    return total / count


# ----------------------------------------------------------------------------- run directory


def _dataset_description(info):
    return {"name": info.name, "image_shape": [int(s) for s in info.image_shape],
            "num_categories": int(info.num_categories),
            "bits": None if info.bits is None else int(info.bits),
            "num_variables": int(np.prod(info.image_shape))}


def forecast_config(config, model):
    """The `forecast` section of config.json: what the heads' weights mean (None without heads)."""
    if not config.forecast_steps:
        return None
    return {"steps": int(config.forecast_steps), "shared": bool(config.forecast_shared),
            "filters": int(config.forecast_filters or model.filters)}


def run_config(config, model, info):
    """The dict written to `logdir/config.json` (with a `forecast` section when there are heads)."""
    values = {"format": CONFIG_FORMAT, "train": config.to_dict(), "model": model.model_config(),
              "dataset": _dataset_description(info)}
    heads = forecast_config(config, model)
    if heads:
        values["forecast"] = heads
    return values


def heads_from_config(forecast_section, model):
    """Forecasting heads for `model` from a config.json `forecast` section (None: no heads)."""
    if not forecast_section:
        return None
    return tfps_forecast.heads_for_model(model, forecast_section["steps"],
                                         forecast_section["filters"], forecast_section["shared"])


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)  # Atomic: a killed run never leaves a half-written file.


def read_config(logdir):
    """Parses `logdir/config.json`; raises CheckpointNotFoundError / CheckpointError."""
    path = os.path.join(logdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"{path}: no such file (is {logdir} a tfps training run?)")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid tfps config ({type(e).__name__}: {e})") from e
    missing = [k for k in ("train", "model", "dataset")
               if not isinstance(config, dict) or k not in config]
    if missing:
        raise CheckpointError(f"{path}: not a valid tfps config (missing {', '.join(missing)})")
    return config


def check_compatible(existing, new, path):
    """Raises ConfigConflictError if two run configs describe different models or data."""
    # Training hyperparameters (steps, learning rate, ...) may change between sessions; what the
    # weights mean (architecture, data and its quantisation) may not.
    problems = []
    for section in ("model", "dataset", "forecast"):
        old_s, new_s = existing.get(section) or {}, new.get(section) or {}
        if section == "model":  # A run from before an argument existed meant its default.
            old_s, new_s = pixelcnn.full_model_config(old_s), pixelcnn.full_model_config(new_s)
        for key in sorted(set(old_s) | set(new_s)):
            if old_s.get(key) != new_s.get(key):
                problems.append(f"{section}.{key}: {old_s.get(key)!r} in the run, "
                                f"{new_s.get(key)!r} requested")
    if problems:
        raise ConfigConflictError(
            f"{path} belongs to a different run; refusing to mix checkpoints. Conflicts: "
            + "; ".join(problems) + ". Use a new --logdir or the original settings.")


# ----------------------------------------------------------------------------- training


def make_optimizer(config):
    """Adam with the per-step exponential decay lr * lr_decay ** step (Table 4)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=1, decay_rate=config.lr_decay)
    return keras.optimizers.Adam(learning_rate=schedule)


def _data_source(config):
    """`(info, load(split) -> dataset of single int images, extra dataset description)`: the
    images of `config.dataset`, or the latents of an autoencoder (`config.latents_from`)."""
    if config.latents_from:
        from tfps import latent  # local: tfps.latent builds on this module
        return latent.latent_source(config)
    load = lambda split: tfps_data.load(config.dataset, split, bits=config.bits,
                                        data_dir=config.data_dir)[0]
    return tfps_data.dataset_info(config.dataset, config.bits), load, {}


def _train_pipeline(config, start_step, ds=None):
    """Shuffled, repeated batches of `ds` (default: the train split of `config.dataset`).

    Returns `(batches, info)`; info is the dataset's when `ds` is None, else None.
    """
    info = None
    if ds is None:
        ds, info = tfps_data.load(config.dataset, "train", bits=config.bits,
                                  data_dir=config.data_dir)
    # The shuffle seed moves with the resume step so a resumed run does not replay the batches
    # its first session already saw.
    ds = (ds.map(lambda x: tf.cast(x, tf.int32))
          .shuffle(10000, seed=config.seed + start_step, reshuffle_each_iteration=True)
          .repeat().batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    return ds, info


class _Progress:
    """Running means of the loss terms between log points, and the step rate."""

    def __init__(self, start_step):
        self.sums, self.count = {}, 0
        self.last_time, self.last_step = time.time(), start_step
        self.train_time, self.train_steps = 0.0, 0

    def add(self, values):
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.count += 1

    def flush(self, step):
        now = time.time()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.train_time += now - self.last_time
        self.train_steps += step - self.last_step
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        self.last_time, self.last_step = now, step
        return means, rate

    def pause(self):
        """Excludes evaluation and checkpointing time from the step rate."""
        return _Pause(self)


class _Pause:
    def __init__(self, progress):
        self.progress = progress

    def __enter__(self):
        self.start = time.time()

    def __exit__(self, *exc):
        self.progress.last_time += time.time() - self.start


def _scalar_metadata():
    # What tensorboard.summary.v2.scalar writes (plugin "scalars", data class SCALAR); built here so
    # training logs scalars without the tensorboard package installed.
    from tensorflow.core.framework import summary_pb2
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR)


def write_scalar(writer, name, value, step):
    """Writes TensorBoard scalar `name` = `value` at `step` to `writer` (a tf.summary writer)."""
    with writer.as_default(step=step):
        tf.summary.write(name, tf.constant(value, tf.float32), metadata=_scalar_metadata())


def _saved_step(manager):
    """The step number of the manager's latest checkpoint, None if there is none."""
    latest = manager.latest_checkpoint
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def _log_progress(progress, step, steps, learning_rate, writer):
    """Logs the loss-term means since the last call, steps/s, lr and ETA. -> mean train bpd."""
    means, rate = progress.flush(step)
    for name, value in dict(means, steps_per_sec=rate, learning_rate=learning_rate).items():
        write_scalar(writer, name, value, step)
    writer.flush()
    terms = "  ".join(f"{name} {value:.4f}" for name, value in means.items())
    logging.info("step %d/%d  %s  %.1f steps/s  lr %.3g  ETA %s", step, steps, terms, rate,
                 learning_rate, _format_eta((steps - step) / max(rate, 1e-9)))
    return means["bpd"]


def _format_eta(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def run_steps(train_ds, config, step, train_step, progress, optimizer, log_progress, validate,
              manager):
    """The resumable step loop shared by every trainer (the ARM, the autoencoder).

    Runs `train_step` on batches of `train_ds` until `step` reaches `config.steps`; every
    `log_every` steps calls `log_progress(progress, step, steps, learning_rate)` (its value is
    returned at the end: the last logged training metric), every `eval_every` steps `validate`,
    every `checkpoint_every` steps and at the end saves with `manager`. Ctrl-C saves the work done
    since the last checkpoint before re-raising, so rerunning resumes from there.
    """
    last_logged = None
    try:
        for x in train_ds:
            progress.add(train_step(x))
            current = int(step)
            if current % config.log_every == 0 or current == config.steps:
                last_logged = log_progress(progress, current, config.steps,
                                           float(optimizer.learning_rate))
            with progress.pause():
                if current % config.eval_every == 0 and current < config.steps:
                    validate(current)
                if current % config.checkpoint_every == 0 or current == config.steps:
                    manager.save(checkpoint_number=current)
            if current >= config.steps:
                break
    except KeyboardInterrupt:
        if _saved_step(manager) != int(step):
            manager.save(checkpoint_number=int(step))
        logging.warning("Interrupted at step %d; saved %s", int(step), manager.latest_checkpoint)
        raise
    return last_logged


def train(config, logdir, loss_terms=(BPD_TERM,)):
    """Trains (or resumes training of) a PixelCNN; returns the final metrics.

    Resumes from the latest checkpoint in `logdir/checkpoints` when there is one, so a killed run
    loses at most `checkpoint_every` steps; a run whose checkpoint is already at `config.steps`
    is only evaluated. Refuses (ConfigConflictError) a logdir whose config.json describes another
    dataset or model. Ends with test bpd over the whole test split.

    Returns a dict with `step`, `test_bpd`, `validation_bpd`, `train_bpd` (mean over the last log
    interval of this session, None if no step ran), `steps_per_sec`, `start_step` and
    `train_seconds`; it is also written to `logdir/metrics.json`.
    """
    config.validate()
    if not loss_terms or loss_terms[0].name != "bpd":
        raise ValueError("loss_terms must start with the ARM's bpd term (BPD_TERM)")
    os.makedirs(logdir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)

    info, load_split, described = _data_source(config)
    config.check_fits(info)  # again: latents are smaller than the images validate() saw
    model = pixelcnn.PixelCNN(image_shape=info.image_shape, num_categories=info.num_categories,
                              num_resnets=config.num_resnets, filters=config.filters,
                              dropout_rate=config.dropout_rate, head_hidden=config.head_hidden,
                              num_scales=config.num_scales)
    new_run_config = run_config(config, model, info)
    new_run_config["dataset"].update(described)
    config_path = os.path.join(logdir, CONFIG_FILE)
    if os.path.exists(config_path):
        check_compatible(read_config(logdir), new_run_config, config_path)
    _write_json(config_path, new_run_config)

    heads = heads_from_config(forecast_config(config, model), model)
    if heads is not None:
        loss_terms = tuple(loss_terms) + (forecast_loss_term(heads, config.forecast_weight),)
    optimizer = make_optimizer(config)
    term_modules = [t.module for t in loss_terms if t.module is not None]
    variables = list(model.trainable_variables)
    for module in term_modules:
        variables += list(module.trainable_variables)
    # Slots exist before restoring, so the checkpoint restores them eagerly (no deferred restore).
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(
        step=step, model=model, optimizer=optimizer,
        **({"terms": {t.name: t.module for t in loss_terms if t.module is not None}}
           if term_modules else {}))
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(logdir, CHECKPOINT_DIR),
                                         max_to_keep=config.keep_checkpoints)
    if manager.latest_checkpoint:
        _restore(checkpoint, manager.latest_checkpoint)
        logging.info("Resuming %s from step %d", manager.latest_checkpoint, int(step))
    start_step = int(step)
    if start_step >= config.steps:
        logging.info("Checkpoint at step %d already reaches steps=%d: evaluating only.",
                     start_step, config.steps)

    writers = {name: tf.summary.create_file_writer(os.path.join(logdir, name))
               for name in ("train", "validation", "test")}
    val_ds = load_split("validation")
    weight_decay = float(config.weight_decay)

    @tf.function
    def train_step(x):
        seed = tf.stack([tf.constant(config.seed, tf.int32), tf.cast(step, tf.int32)])
        with tf.GradientTape() as tape:
            total, values = compute_loss(model, x, loss_terms, training=True, seed=seed)
        # Weights the loss does not reach (e.g. the up stream of a model without resnets) have no
        # gradient; like PyTorch's Adam, leave them alone instead of failing.
        pairs = [(g, v) for g, v in zip(tape.gradient(total, variables), variables)
                 if g is not None]
        if weight_decay > 0.0:
            # PyTorch Adam(weight_decay=...): L2 gradient added before the moment estimates.
            pairs = [(g + weight_decay * tf.convert_to_tensor(v), v) for g, v in pairs]
        optimizer.apply_gradients(pairs)
        step.assign_add(1)
        return values

    eval_fn = make_eval_fn(model)
    accuracy_fn = None if heads is None else tf.function(
        lambda x, seed: tfps_forecast.forecast_accuracy(model, heads, x, seed),
        reduce_retracing=True)

    def validate(at_step):
        bpd = _evaluate(eval_fn, info.image_shape, val_ds, config.batch_size, config.eval_batches)
        write_scalar(writers["validation"], "bpd", bpd, at_step)
        if accuracy_fn is not None:
            accuracy = evaluate_forecast_accuracy(accuracy_fn, val_ds, config.batch_size,
                                                  config.eval_batches, seed=(config.seed, at_step))
            for name, value in accuracy.items():
                write_scalar(writers["validation"], f"forecast_accuracy/{name}", value, at_step)
            logging.info("step %d/%d  forecast accuracy: learned %.3f (t=0: %.3f), fpi %.3f "
                         "(t=0: %.3f)", at_step, config.steps, accuracy["learned"],
                         accuracy["learned_t0"], accuracy["fpi"], accuracy["fpi_t0"])
        writers["validation"].flush()
        logging.info("step %d/%d  validation bpd %.4f", at_step, config.steps, bpd)
        return bpd

    progress = _Progress(start_step)
    train_bpd, validation_bpd = None, None
    if start_step < config.steps:
        train_ds, _ = _train_pipeline(config, start_step, load_split("train"))
        logging.info("Training %s for steps %d..%d: %s", info.name, start_step, config.steps,
                     json.dumps(new_run_config["model"]))
        train_bpd = run_steps(train_ds, config, step, train_step, progress, optimizer,
                              lambda *args: _log_progress(*args, writers["train"]),
                              validate, manager)

    final_step = int(step)
    if _saved_step(manager) != final_step:
        manager.save(checkpoint_number=final_step)
    validation_bpd = validate(final_step)
    test_ds = load_split("test")
    test_bpd = _evaluate(eval_fn, info.image_shape, test_ds, config.batch_size, None)
    write_scalar(writers["test"], "bpd", test_bpd, final_step)
    for writer in writers.values():
        writer.flush()
        writer.close()
    metrics = {
        "step": final_step, "start_step": start_step, "test_bpd": test_bpd,
        "validation_bpd": validation_bpd, "train_bpd": train_bpd,
        "steps_per_sec": (progress.train_steps / progress.train_time
                          if progress.train_steps else None),
        "train_seconds": progress.train_time, "dataset": info.name,
        "uniform_bpd": math.log2(info.num_categories),
        "checkpoint": manager.latest_checkpoint,
    }
    if "dimension_reduction" in described:  # latents: the paper's bits per image dimension too
        metrics["test_bits_per_image_dim"] = test_bpd / described["dimension_reduction"]
    _write_json(os.path.join(logdir, METRICS_FILE), metrics)
    logging.info("step %d  test bpd %.4f (uniform: %.4f)", final_step, test_bpd,
                 metrics["uniform_bpd"])
    return metrics


def evaluate_forecast_accuracy(accuracy_fn, dataset, batch_size, max_batches=None, seed=(0, 0)):
    """Mean over batches of `accuracy_fn(x, seed) -> {name: accuracy}` on `dataset` (single
    images, batched here); batch b draws its posterior noise from a seed derived from (seed, b)."""
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    base = noise_lib.as_seed(tf.constant(seed, tf.int32) % (2 ** 31 - 1))
    sums, count = {}, 0
    for index, x in enumerate(batches):
        seed_b = tf.random.experimental.stateless_fold_in(base, index)
        for name, value in accuracy_fn(tf.cast(x, tf.int32), seed_b).items():
            sums[name] = sums.get(name, 0.0) + float(value)
        count += 1
    return {name: value / max(count, 1) for name, value in sums.items()}


def _restore(checkpoint, prefix, partial=False):
    """Restores `prefix` into `checkpoint`, turning TF's errors into one CheckpointError."""
    try:
        status = checkpoint.restore(prefix)
        if partial:
            status = status.expect_partial()
        status.assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001 - TF reports corruption as IndexError, OpError, ...
        message = getattr(e, "message", None) or str(e)
        first_line = message.strip().splitlines()[0] if message.strip() else type(e).__name__
        raise CheckpointError(f"{prefix}: cannot restore checkpoint ({type(e).__name__}: "
                              f"{first_line})") from e
    return status


# ----------------------------------------------------------------------------- loading


def _resolve_checkpoint(path):
    """-> (logdir, checkpoint prefix) for a run directory or a checkpoint prefix."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, CONFIG_FILE)):
            logdir, ckpt_dir = path, os.path.join(path, CHECKPOINT_DIR)
        elif os.path.basename(path) == CHECKPOINT_DIR:
            logdir, ckpt_dir = os.path.dirname(path), path
        else:
            raise CheckpointNotFoundError(f"{path}: no {CONFIG_FILE} here; "
                                          f"not a tfps run directory")
        prefix = tf.train.latest_checkpoint(ckpt_dir)
        if prefix is None:
            raise CheckpointNotFoundError(f"{ckpt_dir}: no checkpoint found (has training saved "
                                          f"one yet?)")
        return logdir, prefix
    if os.path.isfile(path + ".index"):
        ckpt_dir = os.path.dirname(path)
        logdir = ckpt_dir if os.path.isfile(os.path.join(ckpt_dir, CONFIG_FILE)) else (
            os.path.dirname(ckpt_dir))
        return logdir, path
    if os.path.isfile(path) and path.endswith(".index"):
        return _resolve_checkpoint(path[:-len(".index")])
    raise CheckpointNotFoundError(f"{path}: no such run directory or checkpoint prefix")


def load_trained(logdir_or_checkpoint):
    """Rebuilds a trained PixelCNN: `(model, config)`.

    `logdir_or_checkpoint` is a run directory (its latest checkpoint is used) or a checkpoint
    prefix such as `logdir/checkpoints/ckpt-1000`. `config` is the parsed config.json plus
    `checkpoint` (the restored prefix), `step` (its training step), `logdir` (the run) and
    `forecast_heads`: the restored forecasting heads of a run trained with `forecast_steps > 0`
    (pass them to `sampling.sampler_for_model(..., heads=...)`), else None. Optimizer state is
    not loaded. Raises
    CheckpointNotFoundError (a FileNotFoundError) when something is missing and CheckpointError
    (a ValueError) when the checkpoint is corrupt or does not fit the model, naming the path.
    """
    logdir, prefix = _resolve_checkpoint(logdir_or_checkpoint)
    config = read_config(logdir)
    try:
        model = pixelcnn.build_model(config["model"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{os.path.join(logdir, CONFIG_FILE)}: cannot build the model "
                              f"({e})") from e
    try:
        heads = heads_from_config(config.get("forecast"), model)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{os.path.join(logdir, CONFIG_FILE)}: cannot build the "
                              f"forecasting heads ({e})") from e
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    parts = dict(step=step, model=model)
    if heads is not None:
        parts["terms"] = {"forecast": heads}
    _restore(tf.train.Checkpoint(**parts), prefix, partial=True)
    config = dict(config, checkpoint=prefix, step=int(step), logdir=logdir, forecast_heads=heads)
    return model, config
