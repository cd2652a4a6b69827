"""A training run's progress: running means of the loss terms, the step rate, the ETA, and the
TensorBoard scalars the trainer writes (`tfps.train.trainer.fit`)."""

import time

import tensorflow as tf
from absl import logging


def _scalar_metadata():
    # What tensorboard.summary.v2.scalar writes (plugin "scalars", data class SCALAR); built here
    # so training logs scalars without importing the tensorboard package.
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )


def write_scalar(writer, name, value, step):
    """Writes TensorBoard scalar `name` = `value` at `step` to `writer` (a tf.summary writer)."""
    with writer.as_default(step=step):
        tf.summary.write(name, tf.constant(value, tf.float32), metadata=_scalar_metadata())


def format_eta(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Running means of the loss terms between log points, and the step rate (evaluation and
    checkpointing excluded: wrap them in `pause()`)."""

    def __init__(self, start_step):
        self.sums, self.count = {}, 0
        self.last_time, self.last_step = time.time(), start_step
        self.train_time, self.train_steps = 0.0, 0

    def add(self, values):
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.count += 1

    def flush(self, step):
        """`(means since the last flush, steps per second)`."""
        now = time.time()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.train_time += now - self.last_time
        self.train_steps += step - self.last_step
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        self.last_time, self.last_step = now, step
        return means, rate

    def pause(self):
        return _Pause(self)

    @property
    def steps_per_sec(self):
        return self.train_steps / self.train_time if self.train_steps else None


class _Pause:
    def __init__(self, progress):
        self.progress = progress

    def __enter__(self):
        self.start = time.time()

    def __exit__(self, *exc):
        self.progress.last_time += time.time() - self.start


def log_progress(progress, step, steps, learning_rate, writer):
    """Logs the loss-term means since the last call, steps/s, lr and ETA. -> the means."""
    means, rate = progress.flush(step)
    for name, value in dict(means, steps_per_sec=rate, learning_rate=learning_rate).items():
        write_scalar(writer, name, value, step)
    writer.flush()
    terms = "  ".join(f"{name} {value:.5g}" for name, value in means.items())
    logging.info(
        "step %d/%d  %s  %.1f steps/s  lr %.3g  ETA %s", step, steps, terms, rate,
        learning_rate, format_eta((steps - step) / max(rate, 1e-9)),
    )  # fmt: skip
    return means
