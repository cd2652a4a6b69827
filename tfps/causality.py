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

Positions: all d of them when d <= `max_positions`, else `max_positions` distinct positions drawn
with `seed` (the first and the last always among them), in each of `trials` random inputs.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps import arms, events

TOLERANCE = 1e-5
MAX_POSITIONS = 1024
CHUNK = 32  # perturbed inputs per model call


class NotAutoregressiveError(ValueError):
    """A model whose logits at an earlier position depend on x at a later (or the same) one.

    `earlier`, `later`: the event coordinates (tuples) of the first leaking pair: the logits at
    `earlier` change when x at `later` changes; `flat` is the pair of raster indices.
    """

    def __init__(self, message, earlier=None, later=None, flat=None):
        super().__init__(message)
        self.earlier, self.later, self.flat = earlier, later, flat


class AutoregressiveCheck(NamedTuple):
    """What `check_autoregressive` tested: `positions` (how many j per trial, of d), `exhaustive`
    (all d), `trials`, and `largest_change`: the largest change of a logit that must not change
    (0.0 for an exact mask)."""

    event_shape: tuple
    num_variables: int
    positions: int
    exhaustive: bool
    trials: int
    largest_change: float
    tolerance: float


def _logits(model, x, shape):
    logits = model(tf.constant(x), training=False)
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    logits = np.asarray(tf.cast(logits, tf.float32))
    if logits.shape[:-1] != x.shape:
        raise ValueError(
            f"the model must map x {list(x.shape)} to logits [batch, {', '.join(map(str, shape))}"
            f", K], got logits of shape {list(logits.shape)}"
        )
    return logits.reshape(len(x), -1, logits.shape[-1])


def tested_positions(d, max_positions=MAX_POSITIONS, seed=0):
    """The sorted flat positions j that are perturbed: all of [0, d) when d <= max_positions."""
    if d <= max_positions:
        return np.arange(d)
    inner = np.random.default_rng(seed).choice(np.arange(1, d - 1), max_positions - 2, False)
    return np.sort(np.concatenate([[0, d - 1], inner]))


def check_autoregressive(
    model,
    event_shape=None,
    num_categories=None,
    trials=2,
    seed=0,
    max_positions=MAX_POSITIONS,
    tolerance=TOLERANCE,
    name=None,
):
    """Checks by perturbation that `model` is autoregressive in raster order (`tfps.arms`).

    Args:
      model: called as `model(x, training=False)` with x int32 `[B, *event_shape]`, returning
        logits `[B, *event_shape, K]` (or a tuple whose first element they are).
      event_shape: `(H, W, C)`, `(L,)` or `(L, C)` (default: `model.event_shape`).
      num_categories: K (default: `model.num_categories`).
      trials: random base inputs.
      seed: numpy seed of the inputs, the perturbations and the sampled positions (no TF
        random state is used).
      max_positions: above this d, only that many positions are perturbed per trial.
      tolerance: the largest absolute change of a logit that still counts as unchanged.
      name: what to call the model in the error (default: its class name).

    Returns:
      An `AutoregressiveCheck` summary.

    Raises:
      NotAutoregressiveError naming the first leaking pair (earlier, later) in event
      coordinates: the smallest earlier position, then the smallest later one, of the first
      trial that found a leak. ValueError for logits of the wrong shape.
    """
    shape = events.check_event_shape(
        arms.event_shape_of(model) if event_shape is None else event_shape
    )
    k = int(model.num_categories if num_categories is None else num_categories)
    if k < 2 or int(trials) < 1 or int(max_positions) < 2:
        raise ValueError(f"need K >= 2, trials >= 1, max_positions >= 2; got {k}, {trials}, "
                         f"{max_positions}")  # fmt: skip
    d = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    positions = tested_positions(d, int(max_positions), seed)
    largest = 0.0
    for _ in range(int(trials)):
        base = rng.integers(0, k, size=d).astype(np.int32)
        first = None  # (earlier, later, change) of the trial's first leak
        for start in range(0, len(positions), CHUNK):
            chunk = positions[start : start + CHUNK]
            batch = np.repeat(base[None], len(chunk) + 1, axis=0)
            rows = np.arange(1, len(chunk) + 1)
            batch[rows, chunk] = (base[chunk] + rng.integers(1, k, size=len(chunk))) % k
            logits = _logits(model, batch.reshape((-1,) + shape), shape)
            change = np.abs(logits[1:] - logits[:1]).max(axis=-1)  # [len(chunk), d]
            change = np.where(np.arange(d)[None, :] <= chunk[:, None], change, 0.0)
            largest = max(largest, float(change.max()))
            rows, cols = np.nonzero(change > tolerance)
            if len(rows):
                i = np.lexsort((chunk[rows], cols))[0]  # smallest earlier, then later
                leak = (int(cols[i]), int(chunk[rows[i]]), float(change[rows[i], cols[i]]))
                first = leak if first is None or leak[:2] < first[:2] else first
        if first is not None:
            _raise(name or type(model).__name__, shape, *first, tolerance)
    return AutoregressiveCheck(shape, d, len(positions), len(positions) == d, int(trials),
                               largest, float(tolerance))  # fmt: skip


def _raise(name, shape, earlier, later, change, tolerance):
    at_earlier, at_later = events.position(earlier, shape), events.position(later, shape)
    raise NotAutoregressiveError(
        f"{name} is not autoregressive in raster order: changing x at position {at_later} "
        f"(flat {later}) changes the logits at position {at_earlier} (flat {earlier}) by "
        f"{change:.3g} > tolerance {tolerance:g}; the logits at a position may depend only on x "
        f"at earlier positions (event shape {shape}, axes {', '.join(events.axis_names(shape))})",
        earlier=at_earlier,
        later=at_later,
        flat=(int(earlier), later),
    )
