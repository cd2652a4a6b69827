"""The sample-quality column of the table launchers (`launch.farm_sampling`, `launch.anytime`):
the Frechet distance to the test images in the features of a classifier trained on the labels of
an embedded dataset (`tfps.data.builtin.LABELLED_DATASETS`: the digit of the digits sets, the
source photograph of `photos32`); `tfps.evaluation.frechet` has the protocol."""

from tfps.data import builtin
from tfps.evaluation import frechet


def scorer(dataset, steps):
    """`(score(samples) -> distance, header)`, or `(None, note)` without embedded labels: the
    distance to the test split's features; the validation split's distance to them is the floor.
    `samples`: int images `[N, H, W, C]` in the dataset's levels, N >= 2."""
    if dataset not in builtin.LABELLED_DATASETS:
        return None, f"no Frechet distance: {dataset} has no embedded labels"
    train, info = builtin.load_numpy(dataset, "train")
    test, _ = builtin.load_numpy(dataset, "test")
    validation, _ = builtin.load_numpy(dataset, "validation")
    classifier = frechet.train_classifier(
        train, builtin.labels(dataset, "train"), info.num_categories, steps=steps
    )
    accuracy = frechet.accuracy(classifier, test, builtin.labels(dataset, "test"))
    reference = frechet.features(classifier, test)
    floor = frechet.frechet_distance(reference, frechet.features(classifier, validation))

    def score(samples):
        return frechet.frechet_distance(reference, frechet.features(classifier, samples))

    what = "source-photograph" if dataset == "photos32" else "digit"
    header = (
        f"Frechet distance to the {len(test)} test images in the features of a {what} classifier "
        f"({steps} steps, test accuracy {accuracy:.1%}); the {len(validation)} validation images: "
        f"{floor:.2f}"
    )
    return score, header
