"""The one resumable training loop; the ARM and the autoencoder supply their loss and evaluation.

`fit(config, logdir, task)` runs Adam with the per-step exponential learning-rate decay and
PyTorch-style L2 weight decay of [1, Table 4] on `task.loss`, and keeps the run directory
(`tfps.train.rundir`): checkpoints every `checkpoint_every` steps and at the end (Ctrl-C saves too),
resumption from the latest checkpoint, TensorBoard scalars for train / validation / test,
evaluation every `eval_every` steps and at the end, and `metrics.json`.

A trainer hands `fit` a factory of its `Task` (model, loss, evaluation, extra checkpointed
modules), which `fit` calls inside the run's `tf.distribute` strategy scope
(`tfps.distribute.strategies`: `strategy`, `cpu_replicas`, `mixed_precision`, `jit_compile`), so
that the weights are mirrored across replicas; the factory calls
`keras.utils.set_random_seed(config.seed)` before building, so that weights are the same for the
same seed. Each global batch of `batch_size` is split across the replicas and each replica's mean
loss scaled by its share of the global batch, so that the gradients summed across replicas are those
of the global-batch mean (with one replica the loss is the plain batch mean, as it always was). Only
the chief writes into `logdir`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import dataclasses
import os
from typing import Callable

import keras
import tensorflow as tf
from absl import logging

from tfps.distribute import strategies
from tfps.train import checkpoints, run_lock, rundir
from tfps.train import progress as progress_lib

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Task:
    """What a trainer hands to `fit`.

    model: the Keras model, checkpointed as `model`.
    loss: `(x, seed, step) -> (total, {name: value})` on a training batch x int32 `[B, ...]`;
      seed is a stateless int32 `[2]` seed, different every step, and step the int64 scalar of
      the optimizer step (for a schedule over training, e.g. an ordered code's pretraining at
      full length). Traced into the training step.
    evaluate: `(split, dataset, max_batches, step) -> {name: value}` on single examples of a
      split ("validation" or "test"); the values go to TensorBoard under that split.
    load_split: `split -> tf.data.Dataset` of single integer examples.
    metric: the loss term logged as the run's progress (`train_<metric>` in the metrics) and the
      evaluation value reported as `validation_<metric>` / `test_<metric>`.
    modules: extra `tf.Module`s trained with the model, checkpointed as `{name: module}` under
      `terms` (e.g. forecasting heads).
    description: a one-line description for the log.
    summarize: `metrics -> (metrics, summary)`: the trainer's own metrics added to `fit`'s, and
      the one-line summary logged with metrics.json.
    images: optional `(split, dataset) -> {name: uint8 [1, H, W, C]}`, pictures written to
      TensorBoard with every evaluation (e.g. an ordered code's reconstructions per prefix).
    """

    model: keras.Model
    loss: Callable
    evaluate: Callable
    load_split: Callable
    metric: str
    modules: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    summarize: Callable = lambda metrics: (metrics, "")
    images: Callable = None


def make_optimizer(config):
    """Adam with the per-step exponential decay lr * lr_decay ** step [1, Table 4]."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=1, decay_rate=config.lr_decay
    )
    return keras.optimizers.Adam(learning_rate=schedule)


def train_pipeline(config, start_step, ds):
    """Shuffled, repeated int32 batches of the single examples in `ds`."""
    # The shuffle seed moves with the resume step so a resumed run does not replay the batches
    # its first session already saw.
    return (
        ds.map(lambda x: tf.cast(x, tf.int32))
        .shuffle(10000, seed=config.seed + start_step, reshuffle_each_iteration=True)
        .repeat()
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def run_steps(train_ds, config, step, train_step, progress, log_progress, evaluate, manager):
    """Runs `train_step` on batches of `train_ds` until `step` reaches `config.steps`.

    Every `log_every` steps calls `log_progress(step)` (its value is returned at the end: the
    last logged means), every `eval_every` steps `evaluate(step)`, every `checkpoint_every` steps
    and at the end saves with `manager`. Ctrl-C saves the work done since the last checkpoint
    before re-raising, so rerunning resumes from there.
    """
    last_logged = None
    try:
        for x in train_ds:
            progress.add(train_step(x))
            current = int(step.numpy())
            if current % config.log_every == 0 or current == config.steps:
                last_logged = log_progress(current)
            with progress.pause():
                if current % config.eval_every == 0 and current < config.steps:
                    evaluate(current)
                if current % config.checkpoint_every == 0 or current == config.steps:
                    manager.save(checkpoint_number=current)
            if current >= config.steps:
                break
    except KeyboardInterrupt:
        if checkpoints.saved_step(manager) != int(step.numpy()):
            manager.save(checkpoint_number=int(step.numpy()))
        logging.warning(
            "Interrupted at step %d; saved %s", int(step.numpy()), manager.latest_checkpoint
        )
        raise
    return last_logged


def fit(config, logdir, make_task):
    """Trains (or resumes) the task of `make_task(run_dir) -> Task` in `logdir`; returns the
    final metrics, also written to `logdir/metrics.json`.

    First makes the run's strategy (`tfps.distribute.strategies.strategy_for`, before any other
    TensorFlow op), locks the run directory against a second training process
    (`tfps.train.run_lock`: `RunDirectoryLockedError`) and sets the Keras precision policy for the
    run (the caller's is restored when it ends, also on an error); then calls `make_task` in the
    strategy's scope with the directory this process writes to (`logdir`; a temporary one on
    non-chief workers, see `tfps.distribute.strategies.worker_dir`), where it writes config.json
    (`rundir.start_run`). Resumes from the newest checkpoint in `logdir/checkpoints` that
    restores (`checkpoints.restore_latest_good`: a corrupt one is set aside, any other failure to
    read one is an error that changes nothing), so a killed run loses at most
    `checkpoint_every` steps; a run whose checkpoint is already at `config.steps` is only
    evaluated. Ends with an evaluation on the validation split (`eval_batches`) and on the
    whole test split.

    Returns `{step, start_step, train_<metric>` (mean over the last log interval of this
    session, None if no step ran)`, validation_<metric>, test_<name>` for every test value,
    `steps_per_sec, train_seconds, checkpoint, replicas, skipped_checkpoints}` (the corrupt
    checkpoints this session set aside, `checkpoints.restore_latest_good`) and what `task.summarize`
    adds.
    """
    strategy = strategies.strategy_for(config)
    previous = keras.mixed_precision.global_policy()  # the caller's, restored after the run
    keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")
    try:
        with strategies.worker_dir(logdir, strategy) as run_dir, run_lock.locked(run_dir):
            with strategy.scope():
                task = make_task(run_dir)
                metrics = _fit(config, logdir, run_dir, task, strategy)
            metrics, summary = task.summarize(metrics)
            return finish(run_dir, metrics, summary)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _fit(config, logdir, run_dir, task, strategy):
    # Over 60 lines as one function: the train step, evaluation, validation and progress closures
    # share the run's state (model, optimizer, step, checkpoint manager, writers).
    model = task.model
    optimizer = make_optimizer(config)
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    variables = list(model.trainable_variables)
    for module in task.modules.values():
        variables += list(module.trainable_variables)
    # Slots exist before restoring, so the checkpoint restores them eagerly (no deferred restore).
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    parts = {"terms": dict(task.modules)} if task.modules else {}
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer, **parts)
    # Every worker resumes from the chief's newest checkpoint that restores; the chief sets aside
    # a corrupt one (renamed, never overwritten) and rewrites the state file the manager reads.
    latest, skipped = checkpoints.restore_latest_good(
        checkpoint, os.path.join(logdir, rundir.CHECKPOINT_DIR), set_aside=run_dir == logdir
    )
    directory = os.path.join(run_dir, rundir.CHECKPOINT_DIR)
    manager = tf.train.CheckpointManager(checkpoint, directory, config.keep_checkpoints)
    if latest:
        logging.info("Resuming %s from step %d", latest, int(step.numpy()))
    start_step = int(step.numpy())
    if start_step >= config.steps:
        logging.info(
            "Checkpoint at step %d already reaches steps=%d: evaluating only.",
            start_step, config.steps,
        )  # fmt: skip

    writers = {name: tf.summary.create_file_writer(os.path.join(run_dir, name)) for name in SPLITS}
    val_ds = task.load_split("validation")
    train_step = make_train_step(config, task, variables, optimizer, step, strategy)

    def evaluate(split, dataset, max_batches, at_step):
        values = task.evaluate(split, dataset, max_batches, at_step)
        for name, value in values.items():
            progress_lib.write_scalar(writers[split], name, value, at_step)
        if task.images is not None:
            with writers[split].as_default():
                for name, picture in task.images(split, dataset).items():
                    tf.summary.image(name, picture, step=at_step)
        writers[split].flush()
        shown = "  ".join(f"{name} {value:.5g}" for name, value in values.items())
        logging.info("step %d/%d  %s: %s", at_step, config.steps, split, shown)
        return values

    def validate(at_step):
        return evaluate("validation", val_ds, config.eval_batches, at_step)

    def log_progress(at_step):
        learning_rate = float(optimizer.learning_rate)
        return progress_lib.log_progress(
            progress, at_step, config.steps, learning_rate, writers["train"]
        )

    progress = progress_lib.Progress(start_step)
    logged = None
    if start_step < config.steps:
        train_ds = strategy.experimental_distribute_dataset(
            train_pipeline(config, start_step, task.load_split("train"))
        )
        logging.info(
            "Training %s for steps %d..%d on %d replica(s)",
            task.description, start_step, config.steps, strategy.num_replicas_in_sync,
        )  # fmt: skip
        with strategies.reporting_lost_workers(strategy, lambda: checkpoints.saved_step(manager)):
            logged = run_steps(
                train_ds, config, step, train_step, progress, log_progress, validate, manager
            )

    final_step = int(step.numpy())
    if checkpoints.saved_step(manager) != final_step:
        manager.save(checkpoint_number=final_step)
    validation = validate(final_step)
    test = evaluate("test", task.load_split("test"), None, final_step)
    for writer in writers.values():
        writer.close()
    metric = task.metric
    return {
        "step": final_step,
        "start_step": start_step,
        f"train_{metric}": None if logged is None else logged[metric],
        f"validation_{metric}": validation[metric],
        **{f"test_{name}": value for name, value in test.items()},
        "steps_per_sec": progress.steps_per_sec,
        "train_seconds": progress.train_time,
        "checkpoint": manager.latest_checkpoint,
        "replicas": strategy.num_replicas_in_sync,
        "skipped_checkpoints": skipped,
    }


def make_train_step(config, task, variables, optimizer, step, strategy):
    """The traced `train_step(distributed batch) -> {name: value}`: one optimizer step on the
    global batch, the logged values summed across replicas of their global-batch shares.

    With one replica the loss is `task.loss`'s batch mean as it is; with R replicas replica r's
    mean over its B_r examples is scaled by B_r / B (B the global batch), so the replicas' summed
    gradients are the gradient of the global-batch mean, and the L2 weight decay added per replica
    is divided by R.
    """
    replicas = strategy.num_replicas_in_sync
    weight_decay = float(config.weight_decay) / replicas
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def replica_step(x):
        seed = tf.stack([tf.constant(config.seed, tf.int32), tf.cast(step, tf.int32)])
        if replicas > 1:  # each replica draws its own noise
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.random.experimental.stateless_fold_in(seed, replica)
        with tf.GradientTape() as tape:
            total, values = task.loss(x, seed, step)
            if replicas > 1:
                share = tf.cast(tf.shape(x)[0], tf.float32) / float(config.batch_size)
                total = total * share
                values = {name: value * share for name, value in values.items()}
            target = optimizer.scale_loss(total) if loss_scaled else total
        # Weights the loss does not reach (e.g. the up stream of a model without resnets) have
        # no gradient; like PyTorch's Adam, leave them alone instead of failing.
        pairs = [
            (g, v) for g, v in zip(tape.gradient(target, variables), variables) if g is not None
        ]
        if weight_decay > 0.0:
            # PyTorch Adam(weight_decay=...): L2 gradient added before the moment estimates
            # (times the loss scale, which the loss-scale optimizer divides out).
            decay = weight_decay * optimizer.dynamic_scale if loss_scaled else weight_decay
            pairs = [(g + decay * tf.convert_to_tensor(v), v) for g, v in pairs]
        optimizer.apply_gradients(pairs)
        return values

    if config.jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_step(x):
        values = strategy.run(replica_step, args=(x,))
        step.assign_add(1)
        if replicas == 1:
            return values
        sum_ = tf.distribute.ReduceOp.SUM
        return {name: strategy.reduce(sum_, value, axis=None) for name, value in values.items()}

    return train_step


def finish(logdir, metrics, summary):
    """Writes `metrics` to `logdir/metrics.json`, logs `summary` and returns the metrics."""
    rundir.write_json(os.path.join(logdir, rundir.METRICS_FILE), metrics)
    logging.info("step %d  %s", metrics["step"], summary)
    return metrics
