"""An ARM measured on a split: bits per dimension, every ordering's and the mixture's for a family
of orderings (`tfps.train.ordering_objectives`), and the forecast accuracy of its heads
(`tfps.train.forecasting`), as training reports them to TensorBoard and metrics.json.
"""

import numpy as np
import tensorflow as tf

from tfps.models import pixelcnn
from tfps.sampling import events, protocol
from tfps.sampling import noise as noise_lib
from tfps.train import forecasting, ordering_objectives


def evaluate_bpd(model, dataset, batch_size, max_batches=None):
    """Mean bits per dimension of `model` (`training=False`) over single images in `dataset`.

    `dataset`: a tf.data.Dataset of int `[H, W, C]` images (or an `[N, H, W, C]` numpy array);
    batched here. `max_batches` limits the evaluation to the first batches. The mean is over
    images, not over batch means, so a short last batch is weighted correctly.
    """
    return evaluate_batches(
        make_eval_fn(model), protocol.event_shape_of(model), dataset, batch_size, max_batches
    )


def make_eval_fn(model):
    """A traced `x [B, *event_shape] -> (sum of per-example bpd, B)` with `training=False`."""

    @tf.function(reduce_retracing=True)
    def eval_fn(x):
        logits, _ = model(x, training=False)
        logits = tf.cast(logits, tf.float32)
        return tf.reduce_sum(pixelcnn.bits_per_dim(logits, x)), tf.shape(x)[0]

    return eval_fn


def evaluate_batches(eval_fn, image_shape, dataset, batch_size, max_batches):
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_batches is not None and int(max_batches) < 1:
        raise ValueError(f"max_batches must be >= 1 (or None), got {max_batches}")
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    spec = dataset.element_spec
    if not (spec.dtype.is_integer and tuple(spec.shape) == tuple(image_shape)):
        raise ValueError(
            f"evaluate_bpd needs single integer images of shape {tuple(image_shape)}, "
            f"got a dataset of {spec.dtype.name} {tuple(spec.shape)}"
        )
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    total, count = 0.0, 0  # eval_fn may sum a vector of values (ordering_objectives)
    for x in batches.prefetch(tf.data.AUTOTUNE):
        bpd_sum, n = eval_fn(tf.cast(x, tf.int32))
        total = total + np.asarray(bpd_sum, np.float64)
        count += int(n)
    if count == 0:
        raise ValueError("evaluate_bpd got an empty dataset")
    return total / count


def arm_evaluation(config, model, image_shape, heads):
    """The task's `evaluate(split, dataset, max_batches, at_step) -> {name: value}`: bpd; every
    ordering's bpd and the mixture's for a family of orderings; forecast accuracy on validation
    with heads."""
    # A family's eval function gives every ordering's bpd, ordering 0's (the model's `bpd`) too:
    # one evaluation of each ordering per batch.
    families = ordering_objectives.num_orderings(model) > 1
    eval_fn = ordering_objectives.make_eval_fn(model) if families else make_eval_fn(model)
    canonical = events.canonical_shape(image_shape)
    accuracy_fn = (
        None
        if heads is None
        else tf.function(
            lambda x, seed: forecasting.forecast_accuracy(
                protocol.canonical_arm(model), heads, events.reshape_batch(x, canonical), seed
            ),
            reduce_retracing=True,
        )
    )

    def evaluate(split, dataset, max_batches, at_step):
        means = evaluate_batches(eval_fn, image_shape, dataset, config.batch_size, max_batches)
        if families:
            values = ordering_objectives.metrics_from_means(means)
            values["bpd"] = values["bpd_ordering_0"]
        else:
            values = {"bpd": means}
        if accuracy_fn is not None and split == "validation":
            accuracy = evaluate_forecast_accuracy(
                accuracy_fn, dataset, config.batch_size, max_batches, seed=(config.seed, at_step)
            )
            values.update({f"forecast_accuracy/{k}": v for k, v in accuracy.items()})
        return values

    return evaluate


def evaluate_forecast_accuracy(accuracy_fn, dataset, batch_size, max_batches=None, seed=(0, 0)):
    """Mean over batches of `accuracy_fn(x, seed) -> {name: accuracy}` on `dataset` (single
    images, batched here); batch b draws its posterior noise from a seed derived from (seed, b)."""
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    base = noise_lib.as_seed(tf.constant(seed, tf.int32) % (2**31 - 1))
    sums, count = {}, 0
    for index, x in enumerate(batches):
        seed_b = tf.random.experimental.stateless_fold_in(base, index)
        for name, value in accuracy_fn(tf.cast(x, tf.int32), seed_b).items():
            sums[name] = sums.get(name, 0.0) + float(value)
        count += 1
    return {name: value / max(count, 1) for name, value in sums.items()}
