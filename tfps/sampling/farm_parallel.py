"""FARM's parallel sampling and diagonal schedule: several variables per round, compiled loops [1].

A family of orderings (`model.orderings`, called `model(x, ordering_index=i)`: e.g.
`tfps.models.farm_made.OrderedMADE`) fills an image in rounds, each round one model evaluation
per ordering that proposes a variable. Both samplers are a `tf.while_loop` in one `tf.function`
(optionally XLA-compiled, `jit_compile`), like predictive sampling's loops
(`tfps.sampling.loops`), so their times compare with its.

**Parallel sampling** [1, sec. 3.5]: in each round, every ordering j of the k used proposes the
first variable that is not filled yet in its order, and draws it by Gumbel-max from its own
conditional given the image as it was at the start of the round:

    x_i = argmax_c(logits_j,i(x) + eps_ic),   i = the first unfilled variable in orderings[j]  (1)

Every variable before i in ordering j is filled, so the conditional is the model's (and no other
draw of the round precedes i in ordering j: drawing from the start of the round or from the image
with the round's earlier draws is the same). But the k variables of a round are drawn
independently of each other given the start of the round (FARM's conditional independence
assumption): for k > 1 the samples are NOT those of any one ordering,
and not the ancestral samples of the model. Two orderings that propose the same variable draw it
once, from the first of them. With k = 1 each round is one step of ancestral sampling in that
ordering, exactly. Rounds fall from d towards d / k; each round evaluates the model once per
proposing ordering (`evaluations`, the work), where predictive sampling needs one evaluation per
ARM call.

**The diagonal schedule** [1, sec. 4.5], in one ordering that is a raster variant (read as an
H' x W' image): pixel (a, b) lies on diagonal a * skew + b, and each round fills the next
diagonal (one evaluation per channel) from the logits of the image at the start of the round,
skew (H' - 1) + W' rounds instead of H' W'. Exact when no pixel's logits see a pixel of its own
or a later diagonal: `required_skew` derives that skew from the model's structure
(`model.pixel_dependencies(i)`, bool `[P, P]`, which the MADE and Gated PixelCNN families give),
never from a probe of one set of weights; below it the schedule is APPROXIMATE.

Ordering objects are read duck-typed: `.permutation` (position `permutation[t]` is generated
t-th), `.raster_variant(event_shape)` and `.pixel_order(channels)`
(`tfps.models.orderings.Ordering`). The compiled functions are built once per model and
configuration and kept while the model lives (they hold it weakly).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import collections
import functools
import numbers
import weakref

import numpy as np
import tensorflow as tf

from tfps.sampling import events

ParallelSample = collections.namedtuple(
    "ParallelSample", ["samples", "rounds", "evaluations", "orderings", "exact"]
)
_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> {configuration: tf.function}


def ordering_indices(model, orderings=None):
    """The indices of the orderings used: all of `model.orderings` by default, the first k for an
    int k, or a list of indices (each checked by `events.check_index`). ValueError for a model
    without orderings, a k out of range, a repeat or an unknown index."""
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


def _compiled(model, key, loop, jit_compile):
    """`tf.function(noise) -> (x [B, d], rounds, evaluations)` of `loop(model, noise)` for
    `key`, built once per model, key and `jit_compile` and kept while the model lives (the
    function holds the model weakly, so the cache never keeps it)."""
    functions = _FUNCTIONS.setdefault(model, {})
    key = key + (bool(jit_compile),)
    if key not in functions:
        held = weakref.ref(model)
        spec = tf.TensorSpec((None,) + tuple(model.event_shape) + (model.num_categories,))
        # A partial (no __code__): each function keeps its own retracing statistics.
        functions[key] = tf.function(
            functools.partial(_call_held, held, loop),
            input_signature=[spec],
            jit_compile=bool(jit_compile),
            autograph=False,
        )
    return functions[key]


def _call_held(held, loop, noise):
    return loop(held(), noise)


def _drawn(model, index, x, eps):
    """int32 `[B, d]`: every variable drawn by Gumbel-max from ordering `index`'s logits of x
    `[B, d]` (eq. 1), eps `[B, d, K]`; the caller keeps the ones it fills."""
    image = events.reshape_batch(x, model.event_shape)
    logits = model(image, training=False, ordering_index=index)[0]
    logits = tf.cast(events.reshape_batch(logits, eps.shape[1:]), tf.float32)
    return tf.argmax(logits + eps, axis=-1, output_type=tf.int32)


def _parallel_loop(indices, model, noise):
    """The rounds of parallel sampling (eq. 1), one `tf.while_loop` -> (x, rounds, evaluations):
    each ordering's proposal is drawn from the image at the start of the round."""
    d, k = int(np.prod(model.event_shape)), int(model.num_categories)
    eps = events.reshape_batch(noise, (d, k))
    positions = tf.range(d)[None, :]
    permutations = [tf.constant(model.orderings[i].permutation, tf.int32) for i in indices]

    def one_round(x, filled, rounds, evaluations):
        start, claimed = x, tf.zeros_like(filled)
        for index, permutation in zip(indices, permutations):
            open_in_order = ~tf.gather(filled, permutation, axis=1)
            first = tf.argmax(tf.cast(open_in_order, tf.int32), axis=1, output_type=tf.int32)
            at = tf.equal(positions, tf.gather(permutation, first)[:, None])
            take = tf.reduce_any(open_in_order, axis=1) & ~tf.reduce_any(at & claimed, axis=1)
            proposed = at & take[:, None]

            def draw(x=x, index=index, proposed=proposed, evaluations=evaluations):
                return tf.where(proposed, _drawn(model, index, start, eps), x), evaluations + 1

            # No evaluation in a round where no example takes this ordering's proposal.
            x, evaluations = tf.cond(tf.reduce_any(take), draw, lambda x=x, e=evaluations: (x, e))
            claimed |= proposed
        return x, filled | claimed, rounds + 1, evaluations

    zero, x = tf.constant(0), tf.zeros(tf.shape(eps)[:2], tf.int32)
    x, _, rounds, evaluations = tf.while_loop(
        lambda x, filled, rounds, evaluations: ~tf.reduce_all(filled),
        one_round,
        (x, tf.zeros_like(x, tf.bool), zero, zero),
        maximum_iterations=d,
    )
    return x, rounds, evaluations


def _result(model, function, noise, indices, exact):
    """`ParallelSample` of the compiled `function` on checked noise (samples in x layout)."""
    x, rounds, evaluations = function(noise)
    samples = events.reshape_batch(x, model.event_shape)
    return ParallelSample(samples, int(rounds), int(evaluations), indices, exact)


def parallel_sample(model, noise, orderings=None, jit_compile=False):
    """`ParallelSample(samples, rounds, evaluations, orderings, exact)` of FARM's parallel
    sampling (eq. 1) for noise `[B, *event_shape, K]`: samples int32 `[B, *event_shape]`;
    `rounds` the rounds of the batch, `evaluations` the model calls on the batch (one per
    proposing ordering and round), `exact` True only for one ordering. `orderings`: as
    `ordering_indices`. `jit_compile`: the loop compiled with XLA."""
    indices = ordering_indices(model, orderings)
    noise = events.check_noise(noise, tuple(model.event_shape) + (int(model.num_categories),))
    loop = functools.partial(_parallel_loop, indices)
    function = _compiled(model, ("parallel", tuple(indices)), loop, jit_compile)
    return _result(model, function, noise, indices, len(indices) == 1)


def read_order(model, index):
    """`(pixel order [H' W'], (H', W'))`: pixel `order[t]` of x is read t-th in ordering `index`
    (a raster variant: read as the raster order of an H' x W' image). ValueError for an ordering
    that is not a raster variant."""
    index = ordering_indices(model, [index])[0]
    height, width, channels = events.canonical_shape(tuple(model.event_shape))
    ordering = model.orderings[index]
    variant = ordering.raster_variant(model.event_shape)
    if variant is None:
        raise ValueError(
            f"the diagonal schedule reads an image in a raster variant; ordering {index} "
            f"({ordering!r}) is none"
        )
    read_shape = (width, height) if variant.endswith("_cols") else (height, width)
    return ordering.pixel_order(channels), read_shape


def skew_for(dependencies, order, read_shape):
    """The smallest skew s >= 1 at which every dependency `[t, s]` of `dependencies` (bool
    `[P, P]`, `model.pixel_dependencies`) is on an earlier diagonal, the pixels read in `order` as
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
    from the model's structure (`model.pixel_dependencies(ordering_index)`, `skew_for`): with
    the image read as H' x W' in that ordering, every pixel whose logits may depend on a pixel m
    rows up and r columns right has r < m s, so that pixel is on an earlier diagonal. At most W'.
    ValueError for a model whose structure cannot be read (no `pixel_dependencies`): its exact
    skew is refused, never guessed."""
    order, read_shape = read_order(model, ordering_index)
    if not hasattr(model, "pixel_dependencies"):
        raise ValueError(
            f"the dependencies of {type(model).__name__} cannot be read from its structure (a "
            "MADE or Gated PixelCNN family can): its exact diagonal skew is unknown"
        )
    return skew_for(model.pixel_dependencies(ordering_index), order, read_shape)


def _diagonal_loop(index, round_of, model, noise):
    """The diagonal schedule, one `tf.while_loop` -> (x, rounds, evaluations): round r fills the
    variables whose `round_of` (int32 `[d]`) is r from the logits of the image before it."""
    d, k = len(round_of), int(model.num_categories)
    eps = events.reshape_batch(noise, (d, k))
    round_of, rounds = tf.constant(round_of, tf.int32), int(round_of.max()) + 1

    def one_round(r, x):
        return r + 1, tf.where(tf.equal(round_of, r)[None, :], _drawn(model, index, x, eps), x)

    x = tf.zeros(tf.shape(eps)[:2], tf.int32)
    _, x = tf.while_loop(lambda r, x: r < rounds, one_round, (0, x), maximum_iterations=rounds)
    return x, tf.constant(rounds), tf.constant(rounds)


def diagonal_rounds(order, read_shape, channels, skew):
    """int32 `[d]`: the round of each variable of x (flat, channel last) in the diagonal schedule
    at `skew`, pixels read in `order` as `read_shape` (H', W'): pixel (a, b) of the reading is on
    diagonal a * skew + b, the diagonals taken in order, one round per channel of each."""
    rows, cols = read_shape
    read = np.arange(rows * cols)
    diagonal = np.empty(rows * cols, np.int64)
    diagonal[order] = (read // cols) * skew + read % cols
    rank = np.unique(diagonal, return_inverse=True)[1].reshape(-1)  # the diagonals in order
    return (rank[:, None] * channels + np.arange(channels)).reshape(-1).astype(np.int32)


def diagonal_sample(model, noise, ordering_index=0, skew=None, required=None, jit_compile=False):
    """FARM's diagonal schedule [1, sec. 4.5] in one ordering (a raster variant) of a family:
    `ParallelSample` for noise `[B, *event_shape, K]`.

    Read in ordering `ordering_index`, the image is H' x W'; pixel (a, b) is on diagonal
    a * skew + b, and each round fills every pixel of the next diagonal (channel by channel, one
    model evaluation per channel) from the logits of the image at the start of the round:
    skew (H' - 1) + W' rounds instead of H' W'. Exact (the ancestral sample in that ordering,
    `exact` True) when `skew >= required_skew(model, ordering_index)`, the default: a pixel's
    logits then see only pixels of earlier diagonals (derived from the structure, so proven).
    A smaller skew (FARM's ~5 max(H, W) rounds: skew 4) draws pixels whose conditionals miss
    filled-too-late neighbours: APPROXIMATE. `required`: `required_skew`'s value if derived
    already (else derived here). A model whose skew cannot be derived samples only at an
    explicit `skew`, and never as `exact`. `jit_compile`: the loop compiled with XLA.
    """
    index = ordering_indices(model, [ordering_index])[0]
    order, read_shape = read_order(model, index)
    if required is None:
        try:
            required = required_skew(model, index)
        except ValueError:
            if skew is None:
                raise
    needed = None if required is None else int(required)
    skew = needed if skew is None else int(skew)
    if not 1 <= skew <= read_shape[1]:
        raise ValueError(f"skew must be in [1, {read_shape[1]}] (the width read), got {skew}")
    shape, k = tuple(model.event_shape), int(model.num_categories)
    noise = events.check_noise(noise, shape + (k,))
    round_of = diagonal_rounds(order, read_shape, events.canonical_shape(shape)[2], skew)
    loop = functools.partial(_diagonal_loop, index, round_of)
    function = _compiled(model, ("diagonal", index, skew), loop, jit_compile)
    return _result(model, function, noise, [index], needed is not None and skew >= needed)
