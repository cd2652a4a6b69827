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
    indices = [int(i) for i in orderings]
    if not indices or len(set(indices)) != len(indices):
        raise ValueError(f"the orderings used must be distinct and at least one, got {indices}")
    bad = [i for i in indices if not 0 <= i < len(family)]
    if bad:
        raise ValueError(f"ordering indices {bad} out of range for {len(family)} orderings")
    return indices


def _logits_call(model, index):
    """`call(x) -> logits` of ordering `index`, one `tf.function` per model and ordering."""
    calls = _CALLS.setdefault(model, {})
    if index not in calls:
        calls[index] = tf.function(lambda x: model(x, training=False, ordering_index=index)[0])
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
