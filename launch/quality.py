"""The sample-quality column of the table launchers (`launch.farm_sampling`, `launch.anytime`):
the Frechet distance to the test images in the features of a classifier trained on the labels of
an embedded dataset (`tfps.data.builtin.LABELLED_DATASETS`: the digit of the digits sets, the
source photograph of `photos32`) or of the user's .npz (`<split>_labels` arrays,
`tfps.data.sources.npz_labels`); `tfps.evaluation.frechet` has the protocol."""

import os

import numpy as np

from tfps.data import builtin, sources
from tfps.evaluation import frechet


def _labelled(dataset, num_categories):
    """`(images {split: ...}, labels {split: ...}, levels, what)`, or `(None, note)`."""
    if dataset in builtin.LABELLED_DATASETS:
        images = {split: builtin.load_numpy(dataset, split)[0] for split in builtin.SPLITS}
        labels = {split: builtin.labels(dataset, split) for split in ("train", "test")}
        what = "source-photograph" if dataset == "photos32" else "digit"
        return images, labels, builtin.dataset_info(dataset).num_categories, what
    if not (isinstance(dataset, str) and dataset.endswith(".npz")):
        return None, f"no Frechet distance: {dataset} has no embedded labels"
    images, labels = sources.npz_labels(dataset)
    if not {"train", "test"} <= set(labels):
        return None, f"no Frechet distance: {dataset} has no train_labels and test_labels"
    top = max(int(np.max(split)) for split in images.values())
    if num_categories is None or top >= num_categories:
        return None, (
            f"no Frechet distance: {dataset}'s values (up to {top}) are not the run's levels "
            f"({num_categories}): the run reduced the bit depth"
        )
    return images, labels, num_categories, f"{os.path.basename(dataset)}-label"


def scorer(dataset, steps, num_categories=None):
    """`(score(samples) -> distance, header)`, or `(None, note)` without labels: the distance to
    the test split's features; the validation split's distance to them is the floor (where there
    is one). `samples`: int images `[N, H, W, C]` in the dataset's levels, N >= 2;
    `num_categories`: the run's levels (needed for an .npz, whose values must be those levels)."""
    found = _labelled(dataset, num_categories)
    if found[0] is None:
        return found
    images, labels, levels, what = found
    test = images["test"]
    classifier = frechet.train_classifier(images["train"], labels["train"], levels, steps=steps)
    accuracy = frechet.accuracy(classifier, test, labels["test"])
    reference = frechet.features(classifier, test)

    def score(samples):
        return frechet.frechet_distance(reference, frechet.features(classifier, samples))

    header = (
        f"Frechet distance to the {len(test)} test images in the features of a {what} classifier "
        f"({steps} steps, test accuracy {accuracy:.1%})"
    )
    if len(images.get("validation", ())) >= 2:
        floor = score(images["validation"])
        header += f"; the {len(images['validation'])} validation images: {floor:.2f}"
    return score, header
