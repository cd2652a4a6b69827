"""Inpainting in the ordering that sees the most evidence, with exact conditionals (FARM [1]).

x int `[B, *event_shape]` is observed where `visible` (bool, the same shape, or `[B, H, W]` for
whole pixels of an image) is true; the rest is occluded and filled. A model with a family of
orderings (`model.orderings`, e.g. `tfps.models.farm_made.OrderedMADE`) inpaints each example in
the ordering with the most evidence: the number of (visible, occluded) pairs whose visible
variable is generated first, summed over the occluded variables (FARM's "amount of evidence",
[1, sec. 3]; `evidence_and_exactness`). Any other ARM inpaints in its raster order (the ordering
None, `tfps.sampling.ordered_view`).

- `Inpainter.inpaint` samples the occluded variables with any method of tfps (predictive sampling
  included) through the ordered view (`tfps.sampling.ordered_view.sample_in_ordering`), the
  visible ones as evidence: the visible variables are returned unchanged, and the fill is the
  ancestral sample of the ordering for the noise.
- `Inpainter.nll` scores the true occluded values: sum over the occluded o of
  -log p(x_o | x before o in the ordering), per occluded variable, in nats. Where every visible
  variable precedes every occluded one in the ordering (`exact`), this is exactly
  -log p(x_occluded | x_visible) / n_occluded. Otherwise it conditions each occluded variable on
  the visible (and occluded) ones before it only: it is not log p(x_occluded | x_visible), nor a
  bound on it (FARM's NLL [1, Table 1] scores sampled earlier pixels instead; both are reported
  with `exact` false here).

Bad input is one ValueError naming it: x that is not integer `[B, *event_shape]` with values in
[0, K) (`tfps.sampling.events.validate_events`), noise that is not finite float
`[B, *event_shape, K]` (`events.check_noise`), and a mask with nothing occluded, or nothing
visible, in some example.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import collections
import functools

import numpy as np
import tensorflow as tf

from tfps.sampling import events, ordered_view, predictive, protocol

Inpainting = collections.namedtuple("Inpainting", ["result", "ordering_index", "exact"])


def visible_mask(visible, event_shape, batch):
    """`visible` as bool `[B, *event_shape]` (a `[B, H, W]` pixel mask of an image spread over its
    channels); ValueError for another shape, or an example with nothing occluded or nothing
    visible."""
    mask = np.asarray(visible)
    if mask.dtype != bool:
        raise ValueError(f"visible must be a bool mask, got {mask.dtype}")
    shape = (batch,) + tuple(event_shape)
    if mask.shape == shape[:-1] and len(event_shape) == 3:
        mask = np.repeat(mask[..., None], event_shape[-1], axis=-1)
    if mask.shape != shape:
        raise ValueError(f"visible must have shape {list(shape)} (or {list(shape[:-1])} for "
                         f"pixels of an image), got {list(mask.shape)}")  # fmt: skip
    flat = mask.reshape(batch, -1)
    for what, bad in (("nothing occluded", flat.all(axis=1)), ("nothing visible", ~flat.any(1))):
        if bad.any():
            raise ValueError(
                f"the occlusion mask leaves {what} in example {int(np.argmax(bad))}: inpainting "
                "needs some visible and some occluded variables"
            )
    return mask


def evidence_and_exactness(ordering, visible_flat):
    """`(evidence [B], exact [B])` of one ordering (None: the raster order) for bool
    `visible_flat` `[B, d]` (numpy or a tensor; tensors back): the evidence, summed over the
    occluded variables, of the visible ones generated before each; exact, whether every visible
    variable precedes every occluded one."""
    visible_flat = tf.convert_to_tensor(visible_flat, tf.bool)
    natural = ordering is None
    by_step = tf.cast(visible_flat if natural else ordering.permute(visible_flat), tf.int32)
    before = tf.cumsum(by_step, axis=1, exclusive=True)  # visible, generated earlier
    before = before if natural else ordering.unpermute(before)
    occluded, d = ~visible_flat, tf.shape(visible_flat)[1]
    # The generation step of each position.
    rank = (tf.range(d) if natural else tf.constant(ordering.inverse, tf.int32))[None, :]
    last_visible = tf.reduce_max(tf.where(visible_flat, rank, -1), axis=1)
    first_occluded = tf.reduce_min(tf.where(occluded, rank, d), axis=1)
    score = tf.reduce_sum(tf.where(occluded, before, 0), axis=1)
    return score, last_visible < first_occluded


def choose_orderings(orderings, visible_flat):
    """`(ordering index [B], exact [B])` tensors: per example, the ordering of `orderings` with
    the most evidence (the first of equals) for bool `visible_flat` `[B, d]`, and whether it is
    exact there (`evidence_and_exactness`). Graph-safe: the export's `inpaint` signature calls
    it too."""
    scores, exact = zip(*(evidence_and_exactness(o, visible_flat) for o in orderings))
    scores, exact = tf.stack(scores), tf.stack(exact)  # [k, B]
    positions = tf.range(len(orderings), dtype=tf.int32)[:, None]
    best = tf.reduce_max(scores, axis=0, keepdims=True)
    index = tf.reduce_min(tf.where(tf.equal(scores, best), positions, len(orderings)), axis=0)
    return index, tf.gather(tf.transpose(exact), index, batch_dims=1)


_PER_EXAMPLE = ("arm_calls_per_example", "forecasts_checked")


def _fill_group(sampler, ordering, methods, noise, x, visible, rows, method):
    """`SampleResult` (x layout) of the examples `rows` filled in `ordering` by `sampler`, a
    sampler of its ordered view, with the method of index `method` in `methods` (the graph form of
    `tfps.sampling.ordered_view.sample_in_ordering`, without its eager checks)."""

    def to_z(t, *trailing):
        return ordered_view.to_generation_order(ordering, tf.gather(t, rows), *trailing)

    z = (to_z(noise, noise.shape[-1]), to_z(x), to_z(visible))

    def branch(name):
        return tuple(sampler.loop_function(name)(*z))

    branches = [functools.partial(branch, m) for m in methods]
    result = predictive.SampleResult(
        *tf.switch_case(tf.convert_to_tensor(method, tf.int32), branches)
    )
    return ordered_view.result_in_x_layout(result, ordering, tuple(x.shape[1:]))


def fill_in_chosen_orderings(samplers, orderings, methods, noise, x, visible, index, method):
    """`SampleResult` (x layout) of inpainting each example in its ordering: the examples with
    `index == k` through `samplers[k]`, the sampler of the ordered view of `orderings[k]`
    (`tfps.sampler_for_model(tfps.sampling.ordered_view.in_ordering(model, k))`), the visible
    variables as evidence, by the method of index `method` (int32 scalar) in `methods`;
    `arm_calls` sums the groups' calls (one group after another). Tensors in and out (noise
    `[B, *event, K]`, x int32 and visible bool `[B, *event]`, index int32 `[B]`): eager, or traced
    into the export's `inpaint` signature."""
    x = tf.convert_to_tensor(x, tf.int32)
    shape = tuple(x.shape[1:])

    def empty():  # the result of a group no example chose
        variables = tf.zeros((0,) + shape, tf.int32)
        return predictive.SampleResult(
            **{f: variables for f in ordered_view.PER_VARIABLE if f != "forecast_mistakes"},
            forecast_mistakes=tf.zeros((0,) + shape, tf.bool),
            arm_calls=tf.constant(0, tf.int32),
            **{f: tf.zeros([0], tf.int32) for f in _PER_EXAMPLE},
        )

    rows_of, parts = [], []
    for k, (sampler, ordering) in enumerate(zip(samplers, orderings)):
        rows = tf.reshape(tf.where(tf.equal(index, k)), [-1])
        run = functools.partial(
            _fill_group, sampler, ordering, methods, noise, x, visible, rows, method
        )
        parts.append(tf.cond(tf.size(rows) > 0, run, empty))
        rows_of.append(tf.cast(rows, tf.int32))
    merged = {
        f: tf.dynamic_stitch(rows_of, [getattr(p, f) for p in parts])
        for f in ordered_view.PER_VARIABLE + _PER_EXAMPLE
    }
    return predictive.SampleResult(arm_calls=tf.add_n([p.arm_calls for p in parts]), **merged)


class Inpainter:
    """Inpaints with a model (a family of orderings, or an ARM in raster order); see the module.

    Args:
      model: an ARM; with `model.orderings` (`OrderedMADE`), each of them can be chosen.
      sampler_options: keyword arguments of every sampler (`tfps.sampler_for_model`), e.g.
        `jit_compile=True`.
    """

    def __init__(self, model, **sampler_options):
        self.model = model
        self.event_shape = tuple(model.event_shape)
        self._family = getattr(model, "orderings", None)
        self.orderings = tuple(self._family or (None,))  # None: the raster order
        self._options, self._samplers = sampler_options, {}

    def choose(self, visible):
        """`(ordering index [B], exact [B])`: per example, the ordering with the most evidence
        (the first of equals; `choose_orderings`)."""
        mask = visible_mask(visible, self.event_shape, len(visible))
        index, exact = choose_orderings(self.orderings, mask.reshape(len(mask), -1))
        return index.numpy(), exact.numpy()

    def sampler(self, index):
        """The sampler of the ordered view of ordering `index` (built once)."""
        if index not in self._samplers:
            view = ordered_view.in_ordering(self.model, self._ordering_arg(index))
            self._samplers[index] = predictive.sampler_for_model(view, **self._options)
        return self._samplers[index]

    def _ordering_arg(self, index):
        return None if self._family is None else int(index)

    def inpaint(self, x, visible, noise, method="fpi", ordering_index=None):
        """`Inpainting(result, ordering_index [B], exact [B])`: the occluded variables of x
        sampled by `method` with noise `[B, *event_shape, K]`, each example in its chosen
        ordering (or `ordering_index` for all); `result` a `SampleResult` in x layout
        (`fill_in_chosen_orderings`)."""
        x = self._events(x)
        mask = visible_mask(visible, self.event_shape, len(x))
        index, exact = self._indices(mask, ordering_index)
        samplers = [self.sampler(k) for k in range(len(self.orderings))]
        samplers[0].check_method(method)
        noise = events.check_noise(noise, self.event_shape + (int(self.model.num_categories),))
        methods = tuple(samplers[0].methods)
        if noise.shape[0] != len(x):
            raise ValueError(f"noise has {noise.shape[0]} examples, x {len(x)}")
        result = fill_in_chosen_orderings(
            samplers, self.orderings, methods, noise, x, mask, index, methods.index(method)
        )
        return Inpainting(predictive.complete(result), index, exact)

    def _events(self, x):
        """x as int32 numpy `[B, *event_shape]`; ValueError unless integer values in [0, K)."""
        k = int(self.model.num_categories)
        return events.validate_events(x, self.event_shape, k).numpy()

    def _indices(self, mask, ordering_index):
        if ordering_index is None:
            return self.choose(mask)
        ordering_index = events.check_index(ordering_index, len(self.orderings))
        flat = mask.reshape(len(mask), -1)
        _, exact = evidence_and_exactness(self.orderings[int(ordering_index)], flat)
        return np.full(len(mask), int(ordering_index)), exact.numpy()

    def nll(self, x, visible, ordering_index=None, seen=None):
        """`(nats per occluded variable [B], ordering index [B], exact [B])` of the true x (see
        the module: exactly -log p(x_occluded | x_visible) / n_occluded where `exact`): the
        model's log-likelihood over the occluded variables (`tfps.sampling.protocol.log_prob`).

        `seen` (int `[B, *event_shape]`, default x): the values the conditionals see. With the
        fill `inpaint` returned (same orderings), each true occluded value is scored given the
        visible and the *sampled* earlier values: FARM's NLL [1, Table 1]."""
        x = self._events(x)
        seen = x if seen is None else self._events(seen)
        mask = visible_mask(visible, self.event_shape, len(x))
        index, exact = self._indices(mask, ordering_index)
        nll = np.zeros(len(x))
        for k in np.unique(index):
            rows = np.flatnonzero(index == k)
            _, options = ordered_view.resolve(self.model, self._ordering_arg(k))
            logits = self.model(tf.constant(seen[rows]), training=False, **options)[0]
            occluded = ~mask[rows]
            of_x = protocol.log_prob(tf.cast(logits, tf.float32), x[rows], where=occluded)
            nll[rows] = -of_x.numpy() / occluded.reshape(len(rows), -1).sum(axis=1)
        return nll, index, exact
