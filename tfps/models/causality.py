"""`check_autoregressive`: a perturbation test that a model is an ARM in raster order.

An ARM [1, eq. 1] gives the logits of variable i from x_<i only. Predictive sampling relies on it:
a sample is exact only because an output computed from a valid prefix is never revised [1,
sec. 2.3]. A model that leaks (its logits at i see x_j for some j >= i) trains to a too-good
likelihood and samples nonsense, silently. The check runs the model on random inputs: for each
tested position j it changes x_j to another value, and every logit at flat positions i <= j must
stay the same, to within `tolerance` (absolute, in logits; default 1e-5: an exact mask leaves
them bitwise equal, as a masked weight multiplies by an exact zero, and float noise from batch
composition stays far below it, while a real leak in a randomly initialised model moves the
logits by orders of magnitude more). A perturbed input and the unperturbed one run in the same
batch.

When the model also returns a representation h `[B, *spatial, F]` (`tfps.models.arms`), h at a
spatial position p (a pixel, or a sequence position) may depend only on the earlier pixels, the x at
flat positions < p * C (C channels), since the learned forecasting heads read it before any channel
of p is known [1, sec. 2.4]: h at every p with p * C <= j must stay the same too. The check also
reports the tested positions no later logit depends on (`unused`), inputs the model ignores.

Orderings: with `ordering=pi` (`tfps.models.orderings.Ordering`, [2]) "earlier" means generated
earlier: changing x at generation step t (position pi[t]) may change no logit at steps <= t.

Positions: all d of them when d <= `max_positions`, else `max_positions` distinct positions drawn
with `seed` (the first and the last always among them), in each of `trials` random inputs.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.

[2]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps.models import arm_base
from tfps.models import orderings as orderings_lib
from tfps.sampling import events, protocol

TOLERANCE = 1e-5
MAX_POSITIONS = 1024
CHUNK = 32  # perturbed inputs per model call
TRACE_FROM_CALLS = 6  # model calls of a check from which it traces the model once


class NotAutoregressiveError(ValueError):
    """A model whose logits at an earlier position depend on x at a later (or the same) one.

    `earlier`, `later`: the event coordinates (tuples) of the first leaking pair: the `output`
    ("logits", or "h": the representation of the pixel whose first channel is `earlier`) at
    `earlier` changes when x at `later` changes; `flat` is the pair of raster indices.
    """

    def __init__(self, message, earlier=None, later=None, flat=None, output="logits"):
        super().__init__(message)
        self.earlier, self.later, self.flat, self.output = earlier, later, flat, output


class AutoregressiveCheck(NamedTuple):
    """What `check_autoregressive` tested: `positions` (how many j per trial, of d), `exhaustive`
    (all d), `trials`, `largest_change`: the largest change of a logit (or of h) that must not
    change (0.0 for an exact mask), `checked_h`: whether the model returned an h that was
    checked, and `unused`: the tested flat positions j < d - 1 whose change moved no later logit
    by more than 10 x `tolerance` in any trial (inputs the model ignores)."""

    event_shape: tuple
    num_variables: int
    positions: int
    exhaustive: bool
    trials: int
    largest_change: float
    tolerance: float
    checked_h: bool = False
    unused: tuple = ()

    def summary(self):
        """One line for a log: what was perturbed and what held."""
        tested = "every" if self.exhaustive else "a sample of"
        text = (
            f"autoregressive: {tested} {self.positions} of {self.num_variables} positions "
            f"perturbed ({self.trials} trial(s)), largest change where none may be "
            f"{self.largest_change:.3g} (tolerance {self.tolerance:.3g})"
        )
        if self.checked_h:
            text += "; h checked too"
        if self.unused:
            shown = ", ".join(map(str, self.unused[:5])) + (", ..." if len(self.unused) > 5 else "")
            text += f"; {len(self.unused)} position(s) no later logit uses: {shown}"
        return text


def _changes(model, x, shape, count):
    """`(logits [count, d], h [count, P] or None)`: for each of the rows 1..count of x
    `[B, *shape]`, the largest absolute change of each logit (over K) and of h at each of the P
    spatial positions (over F) from row 0's, reduced in TensorFlow (the full logits of a large K
    never reach the host). ValueError for outputs of the wrong shape."""
    out = model(tf.constant(x))
    out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    logits, h = out[0], (out[1] if len(out) > 1 else None)
    dims = ", ".join(map(str, shape))
    if tuple(logits.shape[:-1]) != x.shape:
        raise ValueError(
            f"the model must map x {list(x.shape)} to logits [batch, {dims}, K], got logits of "
            f"shape {list(logits.shape)}"
        )

    def change(values, positions):
        values = tf.reshape(tf.cast(values, tf.float32), [len(x), positions, -1])[: count + 1]
        return tf.reduce_max(tf.abs(values[1:] - values[:1]), axis=-1).numpy()

    if h is None:
        return change(logits, int(np.prod(shape))), None
    spatial = arm_base.spatial_shape(shape)
    if tuple(h.shape[:-1]) != (len(x),) + spatial:
        raise ValueError(
            f"the model must return h [batch, {', '.join(map(str, spatial))}, F] (or None) for "
            f"x {list(x.shape)}, got h of shape {list(h.shape)}"
        )
    return change(logits, int(np.prod(shape))), change(h, int(np.prod(spatial)))


def _caller(model, trials, positions):
    """`x -> model(x, training=False)`, traced when the check's calls (trials x chunks of the
    positions) pay for the trace (a trace costs about a few eager calls)."""
    calls = trials * -(-positions // CHUNK)
    return _traced(model) if calls >= TRACE_FROM_CALLS else (lambda x: model(x, training=False))


def _traced(model):
    """`x -> model(x, training=False)` traced once (the check calls it with one batch shape): an
    eager call pays every layer's Python dispatch (17 s instead of 10 s for a 3-scale 28 x 28
    PixelCNN on 2 CPU cores). Under a name scope, as the samplers call it: a Keras layer named
    `_x` cannot open a root name scope in a graph."""

    @tf.function
    def call(x):
        with tf.name_scope("check_autoregressive"):
            return model(x, training=False)

    return call


def _first_leak(change, earlier, chunk, tolerance, rank):
    """`(earlier flat, later flat, change)` of the smallest leaking pair, or None.

    `change`: `[len(chunk), n]`, the largest change of each output column when x at `chunk[r]`
    changed; `earlier`: `[n]`, the flat position each column may not see from (on); `rank`:
    the generation step of each flat position (pairs compare by step)."""
    rows, cols = np.nonzero(change > tolerance)
    if not len(rows):
        return None
    i = np.lexsort((rank[chunk[rows]], rank[earlier[cols]]))[0]  # smallest earlier, then later
    return int(earlier[cols[i]]), int(chunk[rows[i]]), float(change[rows[i], cols[i]])


def tested_positions(d, max_positions=MAX_POSITIONS, seed=0):
    """The sorted flat positions j that are perturbed: all of [0, d) when d <= max_positions."""
    if d <= max_positions:
        return np.arange(d)
    inner = np.random.default_rng(seed).choice(np.arange(1, d - 1), max_positions - 2, False)
    return np.sort(np.concatenate([[0, d - 1], inner]))


# Positions perturbed by `quick_check`: every one up to this d, else this many at random with the
# first and last. A leak from a wrong mask reaches almost every position; the default of 1024
# cost 7 s of a 4-step training run on 32x32x3 (2 CPU cores).
QUICK_POSITIONS = 256


def quick_check(model, seed=0, name=None):
    """`check_autoregressive` in one trial of at most `QUICK_POSITIONS` positions: the check that
    training runs on every new model before writing anything. A family of orderings
    (`tfps.models.family`) is checked in each of its orderings; the last check is returned."""
    family = getattr(model, "orderings", None)
    checked = [(model, None)] if family is None else [
        (model.one_ordering(k), ordering) for k, ordering in enumerate(family)
    ]  # fmt: skip
    for arm, ordering in checked:
        check = check_autoregressive(
            arm, trials=1, seed=seed, max_positions=QUICK_POSITIONS, name=name, ordering=ordering
        )
    return check


def check_autoregressive(
    model,
    event_shape=None,
    num_categories=None,
    trials=2,
    seed=0,
    max_positions=MAX_POSITIONS,
    tolerance=TOLERANCE,
    name=None,
    ordering=None,
):
    """Checks by perturbation that `model` is autoregressive in raster order (`tfps.models.arms`),
    or in `ordering`.

    Args:
      model: called as `model(x, training=False)` with x int32 `[B, *event_shape]`, returning
        logits `[B, *event_shape, K]`, or a tuple `(logits, h)` whose h is None or a
        representation `[B, *spatial, F]` (spatial `(H, W)` for images, `(L,)` for sequences),
        which is checked too (see the module docstring).
      event_shape: `(H, W, C)`, `(L,)` or `(L, C)` (default: `model.event_shape`).
      num_categories: K (default: `model.num_categories`).
      trials: random base inputs.
      seed: numpy seed of the inputs, the perturbations and the sampled positions (no TF
        random state is used).
      max_positions: above this d, only that many positions are perturbed per trial.
      tolerance: the largest absolute change of a logit (or of h) that still counts as unchanged.
      name: what to call the model in the error (default: its class name).
      ordering: the generation order to check (`tfps.models.orderings.Ordering`, a raster
        variant name or a permutation of the d flat positions; default the raster order):
        changing x at generation step t may change no logit at steps <= t, and h at a pixel
        may depend only on x generated before the pixel's first channel.

    Returns:
      An `AutoregressiveCheck` summary.

    Raises:
      NotAutoregressiveError naming the first leaking pair (earlier, later) in event
      coordinates and the output that leaks (logits before h): the smallest earlier position,
      then the smallest later one, of the first trial that found a leak. ValueError for logits or
      h of the wrong shape.
    """
    shape = events.check_event_shape(
        protocol.event_shape_of(model) if event_shape is None else event_shape
    )
    k = int(model.num_categories if num_categories is None else num_categories)
    if k < 2 or int(trials) < 1 or int(max_positions) < 2:
        raise ValueError(f"need K >= 2, trials >= 1, max_positions >= 2; got {k}, {trials}, "
                         f"{max_positions}")  # fmt: skip
    d = int(np.prod(shape))
    pi = None if ordering is None else orderings_lib.as_ordering(ordering, shape)
    rank = np.arange(d) if pi is None else pi.inverse  # the generation step of each position
    rng = np.random.default_rng(seed)
    positions = tested_positions(d, int(max_positions), seed)
    # The flat position from which each output may not see: logit i from i, h of pixel p from pC.
    earlier = {"logits": np.arange(d), "h": np.arange(0, d, arm_base.channels(shape))}
    largest, checked_h, used = 0.0, False, np.zeros(d, bool)
    call, rows = _caller(model, int(trials), len(positions)), min(CHUNK, len(positions)) + 1
    for _ in range(int(trials)):
        first = None  # (earlier, later, output order, change) of the trial's first leak
        base = rng.integers(0, k, size=d).astype(np.int32)
        for start in range(0, len(positions), CHUNK):
            chunk = positions[start : start + CHUNK]
            batch = np.repeat(base[None], rows, axis=0)  # rows past the chunk: base again
            batch[np.arange(1, len(chunk) + 1), chunk] = (
                base[chunk] + rng.integers(1, k, size=len(chunk))
            ) % k
            logits, h = _changes(call, batch.reshape((-1,) + shape), shape, len(chunk))
            checked_h = checked_h or h is not None
            for order, (output, change) in enumerate({"logits": logits, "h": h}.items()):
                if change is None:
                    continue  # change: [len(chunk), n]
                later = rank[earlier[output]][None, :] > rank[chunk][:, None]
                if output == "logits":
                    used[chunk] |= np.where(later, change, 0.0).max(axis=1) > 10 * tolerance
                change = np.where(later, 0.0, change)
                largest = max(largest, float(change.max()))
                leak = _first_leak(change, earlier[output], chunk, tolerance, rank)
                if leak is not None:  # compared by (earlier step, later step, output)
                    leak = (rank[leak[0]], rank[leak[1]], order) + leak
                    first = leak if first is None or leak[:3] < first[:3] else first
        if first is not None:
            _raise(name or type(model).__name__, shape, *first[2:], tolerance, pi)
    unused = tuple(int(j) for j in positions if rank[j] < d - 1 and not used[j])
    return AutoregressiveCheck(shape, d, len(positions), len(positions) == d, int(trials),
                               largest, float(tolerance), checked_h, unused)  # fmt: skip


def _raise(name, shape, order, earlier, later, change, tolerance, ordering=None):
    at_earlier, at_later = events.position(earlier, shape), events.position(later, shape)
    if order == 0:
        what = f"the logits at position {at_earlier}"
        rule = "the logits at a position may depend only on x at earlier positions"
    else:
        where = f"position {at_earlier}" if len(shape) == 1 else f"pixel {at_earlier[:-1]}"
        what = f"the representation h at {where}"
        rule = "h at a pixel (sequence position) may depend only on x at earlier pixels"
    order_name, steps = "raster order", ""
    if ordering is not None:
        rank = ordering.inverse
        order_name = f"ordering {ordering.name or repr(ordering)}"
        steps = f" (generation steps {rank[later]} >= {rank[earlier]})"
    raise NotAutoregressiveError(
        f"{name} is not autoregressive in {order_name}: changing x at position {at_later} "
        f"(flat {later}) changes {what} (flat {earlier}) by {change:.3g} > tolerance "
        f"{tolerance:g}; {rule} (event shape {shape}, axes "
        f"{', '.join(events.axis_names(shape))}){steps}",
        earlier=at_earlier,
        later=at_later,
        flat=(int(earlier), later),
        output=("logits", "h")[order],
    )
