"""Sample quality offline: the Frechet distance in the features of a small labelled classifier.

The Frechet Inception Distance [1] compares two sets of images by the Gaussians fitted to their
features in an Inception network: ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). Inception
is a download and sees photographs; here the features are the penultimate layer of a small
convolutional classifier trained on the labelled images of the task itself (the embedded digits:
`tfps.data.builtin.labels`; or any labelled images of your own), as FARM [2, Table 2] scored
its MNIST samples with a classifier trained on MNIST. Distances are comparable only for the same
classifier (same data, steps and seed) and the same reference images.

Protocol (docs/farm.md): train the classifier on the training split (`train_classifier`, default
600 steps of batch 64, seed 0; its test accuracy is reported beside every distance), take the
features of the test images as the reference, and of N samples of each method; report
`frechet_distance`. The distance of other held-out images (the validation split) to the
reference is the floor that finite sets alone give (small sets inflate every distance alike).

#### References

[1]: Martin Heusel, Hubert Ramsauer, Thomas Unterthiner, Bernhard Nessler, Sepp Hochreiter. GANs
     Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium. In NeurIPS, 2017.

[2]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import collections

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

Classifier = collections.namedtuple("Classifier", ["model", "features", "num_categories"])
FEATURES = 64


def _inputs(images, num_categories):
    return tf.cast(images, tf.float32) / float(num_categories - 1)


def train_classifier(images, labels, num_categories, steps=600, batch_size=64, seed=0):
    """A small CNN classifier of int images `[N, H, W, C]` in [0, num_categories) into the classes
    of int `labels` `[N]`: `Classifier(model, features, num_categories)`, `features` the model up
    to its penultimate layer (`FEATURES` units). ValueError for mismatched or empty inputs."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or len(images) == 0 or len(labels) != len(images):
        raise ValueError(
            f"need images [N, H, W, C] and N labels, got {list(images.shape)} and "
            f"{list(labels.shape)}"
        )
    keras.utils.set_random_seed(seed)
    classes = int(labels.max()) + 1
    inputs = keras.Input(images.shape[1:])
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Flatten()(h)
    features = keras.layers.Dense(FEATURES, activation="relu", name="features")(h)
    model = keras.Model(inputs, keras.layers.Dense(classes)(features))
    optimizer = keras.optimizers.Adam(1e-3)
    x, y = _inputs(images, num_categories), tf.constant(labels, tf.int32)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            logits = model(tf.gather(x, batch), training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(tf.gather(y, batch), logits)
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))  # fmt: skip

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        step(tf.constant(rng.integers(0, len(images), batch_size), tf.int32))
    return Classifier(model, keras.Model(inputs, features), num_categories)


def accuracy(classifier, images, labels):
    """The share of `images` classified as their `labels`."""
    logits = classifier.model(_inputs(images, classifier.num_categories), training=False)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def features(classifier, images):
    """float64 `[N, FEATURES]`: the classifier's penultimate features of int images."""
    out = classifier.features(_inputs(images, classifier.num_categories), training=False)
    return np.asarray(out, np.float64)


def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets `[N, F]` (N >= 2),
    in float64 (the real part of the matrix square root; its imaginary rounding dropped)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two feature sets [N >= 2, F], got {list(a.shape)}, {list(b.shape)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root)
    return float(max(distance, 0.0))


def scorer(labelled, steps):
    """The protocol above as `(score(samples) -> distance, header)`, or `(None, note)`.

    `labelled`: `tfps.data.sources.labelled(dataset, num_categories)`, the images and labels of
    a dataset (`images {split: ...}`, `labels {"train", "test"}`, `num_categories`, `what` a
    label names), or the note (str) saying why it has none. The classifier trains `steps` steps
    on the training split; the score is the distance of int samples `[N, H, W, C]` (N >= 2, the
    dataset's levels) to the test split's features, and the header names the classifier, its
    test accuracy and, where there is a validation split, the floor: its distance to them."""
    if isinstance(labelled, str):
        return None, labelled
    images, labels, levels, what = labelled
    test = images["test"]
    classifier = train_classifier(images["train"], labels["train"], levels, steps=steps)
    test_accuracy = accuracy(classifier, test, labels["test"])
    reference = features(classifier, test)

    def score(samples):
        return frechet_distance(reference, features(classifier, samples))

    header = (
        f"Frechet distance to the {len(test)} test images in the features of a {what} classifier "
        f"({steps} steps, test accuracy {test_accuracy:.1%})"
    )
    if len(images.get("validation", ())) >= 2:
        floor = score(images["validation"])
        header += f"; the {len(images['validation'])} validation images: {floor:.2f}"
    return score, header
