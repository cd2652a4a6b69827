"""FARM's parallel sampling: one variable per ordering per round, APPROXIMATE for k > 1 [1, 3.5].

A family of orderings (`model.orderings`, e.g. `tfps.models.farm_made.OrderedMADE`) fills an
image in rounds. In each round, every ordering j of the k used proposes the first variable that is
not filled yet in its order, and draws it by Gumbel-max from its own conditional given the image
as it was at the start of the round:

    x_i = argmax_c(logits_j,i(x) + eps_ic),   i = the first unfilled variable in orderings[j]

Every variable before i in ordering j is filled, so the conditional is the model's; but the k
variables of a round are drawn independently of each other given the start of the round (FARM's
conditional independence assumption): for k > 1 the samples are NOT those of any one ordering,
and not the ancestral samples of the model. Two orderings that propose the same variable draw it
once, from the first of them. With k = 1 each round is one step of ancestral sampling in that
ordering, exactly (the same noise gives `sample_in_ordering(..., "ancestral")`'s sample).

Rounds fall from d towards d / k (FARM's "sub-linear sampling"); each round evaluates the model
once per ordering that proposes a variable (`evaluations`, the work), while exact predictive
sampling (`tfps.sampling`) needs one evaluation per ARM call. Compare both by their evaluations,
their time and their sample quality (`tfps.evaluation.frechet`).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import collections
import numbers
import weakref

import numpy as np
import tensorflow as tf

from tfps.models import orderings as orderings_lib
from tfps.sampling import events

ParallelSample = collections.namedtuple(
    "ParallelSample", ["samples", "rounds", "evaluations", "orderings", "exact"]
)
_CALLS = weakref.WeakKeyDictionary()


def ordering_indices(model, orderings=None):
    """The indices of the orderings used: all of `model.orderings` by default, the first k for an
    int k, or a list of indices. ValueError for a model without orderings, a k out of range, a
    repeat or an unknown index."""
    family = getattr(model, "orderings", None)
    if not family:
        raise ValueError(
            f"parallel sampling draws from a family of orderings; {type(model).__name__} has no "
            "`orderings` (train arch farm_made)"
        )
    if orderings is None:
        return list(range(len(family)))
    if isinstance(orderings, numbers.Integral) and not isinstance(orderings, bool):
        if not 1 <= orderings <= len(family):
            raise ValueError(f"k must be in [1, {len(family)}] orderings, got {orderings}")
        return list(range(int(orderings)))
    indices = [events.check_index(i, len(family)) for i in orderings]
    if not indices or len(set(indices)) != len(indices):
        raise ValueError(f"the orderings used must be distinct and at least one, got {indices}")
    return indices


def _logits_call(model, index):
    """`call(x) -> logits` of ordering `index`, one `tf.function` per model and ordering, kept
    while the model lives (the function holds the model weakly, so the cache never keeps it)."""
    calls = _CALLS.setdefault(model, {})
    if index not in calls:
        held = weakref.ref(model)
        calls[index] = tf.function(lambda x: held()(x, training=False, ordering_index=index)[0])
    return calls[index]


def parallel_sample(model, noise, orderings=None):
    """`ParallelSample(samples, rounds, evaluations, orderings, exact)` for noise
    `[B, *event_shape, K]` (see the module): samples int32 in x layout; `rounds` the rounds of
    the batch, `evaluations` the model calls on the batch (one per proposing ordering and round),
    `exact` True only for one ordering. `orderings`: as `ordering_indices`."""
    indices = ordering_indices(model, orderings)
    shape, k = tuple(model.event_shape), int(model.num_categories)
    noise = events.check_noise(noise, shape + (k,)).numpy()  # shape, dtype, finite
    batch, d = noise.shape[0], int(np.prod(shape))
    flat_noise = noise.reshape(batch, d, k)
    permutations = [model.orderings[i].permutation for i in indices]
    rows = np.arange(batch)
    x, filled = np.zeros((batch, d), np.int32), np.zeros((batch, d), bool)
    rounds, evaluations = 0, 0
    while not filled.all():
        rounds += 1
        start = tf.constant(x.reshape((batch,) + shape).copy())  # the image the round sees
        claimed = np.zeros_like(filled)
        for index, permutation in zip(indices, permutations):
            open_in_order = ~filled[:, permutation]
            position = permutation[np.argmax(open_in_order, axis=1)]
            take = open_in_order.any(axis=1) & ~claimed[rows, position]
            if not take.any():
                continue
            logits = _logits_call(model, index)(start).numpy().reshape(batch, d, k)
            evaluations += 1
            drawn = np.argmax(logits[rows, position] + flat_noise[rows, position], axis=-1)
            x[rows[take], position[take]] = drawn[take]
            claimed[rows[take], position[take]] = True
        filled |= claimed
    return ParallelSample(
        x.reshape((batch,) + shape), rounds, evaluations, indices, len(indices) == 1
    )


def read_order(model, index):
    """`(pixel order [H' W'], (H', W'))`: pixel `order[t]` of x is read t-th in ordering `index`
    (a raster variant: read as the raster order of an H' x W' image)."""
    height, width, channels = events.canonical_shape(tuple(model.event_shape))
    ordering = model.orderings[index]
    variant = orderings_lib.raster_variant(ordering, model.event_shape)
    if variant is None:
        raise ValueError(
            f"the diagonal schedule reads an image in a raster variant; ordering {index} "
            f"({ordering!r}) is none"
        )
    read_shape = (width, height) if variant.endswith("_cols") else (height, width)
    return orderings_lib.pixel_order(ordering, channels), read_shape


def pixel_dependencies(model, ordering_index=0):
    """bool `[P, P]` over the P = H W pixels of x (raster indices): `[t, s]` True where the
    model's structure lets the logits at pixel t in ordering `ordering_index` depend on pixel s
    (a superset of the dependencies any weights realise; a pixel's own channels excluded).

    Derived from the structure, never probed: a MADE family (`tfps.models.farm_made`) from the
    product of its masks over every pair of variables; a Gated PixelCNN family
    (`tfps.models.farm_pixelcnn`), which reads the pixels of ordering k as an H x W image in its
    raster order, from its receptive field there: every pixel of the rows above up to
    `right_reach()` columns to the right, and the pixels to the left in its own row. ValueError
    for a model whose structure tfps cannot read."""
    index = ordering_indices(model, [ordering_index])[0]
    height, width, channels = events.canonical_shape(tuple(model.event_shape))
    pixels = height * width
    if hasattr(model, "right_reach"):  # a PixelCNN read in the ordering's pixel order
        reach = int(model.right_reach())
        row, col = np.divmod(np.arange(pixels), width)  # network positions, H x W raster
        above = (row[None, :] < row[:, None]) & (col[None, :] <= col[:, None] + reach)
        left = (row[None, :] == row[:, None]) & (col[None, :] < col[:, None])
        order = orderings_lib.pixel_order(model.orderings[index], channels)
        dependencies = np.zeros((pixels, pixels), bool)
        dependencies[np.ix_(order, order)] = above | left
        return dependencies
    if hasattr(model, "masks"):  # a MADE: input units -> output units through every mask
        masks = model.masks()
        reach = masks[0][index] if masks[0].ndim == 3 else masks[0]
        for mask in masks[1:]:
            mask = mask[index] if mask.ndim == 3 else mask
            reach = (reach.astype(np.float64) @ mask) > 0
        k = int(model.num_categories)
        variables = reach.reshape(pixels, channels, k, pixels, channels, k).any(axis=(1, 2, 4, 5))
        dependencies = variables.T.copy()  # [target, source]
        np.fill_diagonal(dependencies, False)
        return dependencies
    raise ValueError(
        f"the dependencies of {type(model).__name__} cannot be read from its structure (a MADE "
        "or Gated PixelCNN family can): its exact diagonal skew is unknown"
    )


def skew_for(dependencies, order, read_shape):
    """The smallest skew s >= 1 at which every dependency `[t, s]` of `dependencies` (bool
    `[P, P]`, `pixel_dependencies`) is on an earlier diagonal, the pixels read in `order` as
    `read_shape` (H', W') rows: a source m >= 1 rows above and r columns right of its target
    needs r < m s. ValueError for a dependency on a pixel read later (not autoregressive)."""
    rows, cols = read_shape
    read = np.empty(len(order), np.int64)
    read[order] = np.arange(len(order))  # each pixel's place in the reading
    targets, sources = np.nonzero(dependencies)
    up = read[targets] // cols - read[sources] // cols  # m: rows above the target
    right = read[sources] % cols - read[targets] % cols  # r: columns right of it
    later = (up < 0) | ((up == 0) & (right >= 0))
    if later.any():
        t, s = int(targets[later][0]), int(sources[later][0])
        raise ValueError(
            f"pixel {t} depends on pixel {s}, which the ordering reads after it: the model is not "
            "autoregressive in that ordering"
        )
    above = up > 0
    needed = (right[above] // up[above] + 1).max(initial=1)
    return int(min(needed, cols))


def required_skew(model, ordering_index=0):
    """The smallest skew s for which `diagonal_sample` is exact in ordering `ordering_index`,
    from the model's structure (`pixel_dependencies`, `skew_for`): with the image read as
    H' x W' in that ordering, every pixel whose logits may depend on a pixel m rows up and r
    columns right has r < m s, so that pixel is on an earlier diagonal. At most W'. ValueError
    for a model whose structure cannot be read: its exact skew is refused, never guessed."""
    order, read_shape = read_order(model, ordering_index)
    return skew_for(pixel_dependencies(model, ordering_index), order, read_shape)


def diagonal_sample(model, noise, ordering_index=0, skew=None, required=None):
    """FARM's diagonal schedule [1, sec. 4.5] in one ordering (a raster variant) of a family:
    `ParallelSample` for noise `[B, *event_shape, K]`.

    Read in ordering `ordering_index`, the image is H' x W'; pixel (a, b) is on diagonal
    a * skew + b, and each round fills every pixel of the next diagonal (channel by channel, one
    model evaluation per channel) from the logits of the image at the start of the round:
    skew (H' - 1) + W' rounds instead of H' W'. Exact (the ancestral sample in that ordering,
    `exact` True) when `skew >= required_skew(model, ordering_index)`, the default: a pixel's
    logits then see only pixels of earlier diagonals (derived from the structure, so proven).
    A smaller skew (FARM's ~5 max(H, W) rounds:
    skew 4) draws pixels whose conditionals miss filled-too-late neighbours: APPROXIMATE.
    `required`: `required_skew`'s value if derived already (else derived here). A model whose
    skew cannot be derived samples only at an explicit `skew`, and never as `exact`.
    """
    order, (rows, cols) = read_order(model, ordering_index)
    if required is None:
        try:
            required = required_skew(model, ordering_index)
        except ValueError:
            if skew is None:
                raise
    needed = None if required is None else int(required)
    skew = needed if skew is None else int(skew)
    if not 1 <= skew <= cols:
        raise ValueError(f"skew must be in [1, {cols}] (the width read), got {skew}")
    shape, k = tuple(model.event_shape), int(model.num_categories)
    channels = events.canonical_shape(shape)[2]
    noise = events.check_noise(noise, shape + (k,)).numpy()
    batch = noise.shape[0]
    eps = noise.reshape(batch, rows * cols, channels, k)
    x = np.zeros((batch, rows * cols, channels), np.int32)
    read = np.arange(rows * cols)
    diagonal = np.empty(rows * cols, np.int64)
    diagonal[order] = (read // cols) * skew + read % cols  # each pixel's diagonal
    call, rounds = _logits_call(model, ordering_index), 0
    for step in np.unique(diagonal):
        pixels = np.flatnonzero(diagonal == step)
        for c in range(channels):
            rounds += 1
            logits = call(tf.constant(x.reshape((batch,) + shape))).numpy()
            logits = logits.reshape(batch, rows * cols, channels, k)
            x[:, pixels, c] = np.argmax(logits[:, pixels, c] + eps[:, pixels, c], axis=-1)
    return ParallelSample(
        x.reshape((batch,) + shape),
        rounds,
        rounds,
        [int(ordering_index)],
        needed is not None and skew >= needed,
    )
