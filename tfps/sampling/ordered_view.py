"""The ordered view: an ARM read in the order it generates its variables [1, sec. 3; 2, sec. 2.3].

An ARM factorises p(x) = prod_t p(x_{pi(t)} | x_{pi(<t)}) in some ordering pi of its d flat
positions (raster order over all axes, channel last): position `pi[t]` is generated t-th, and

    z = permute(x),  z_t = x_{pi[t]}              x in generation order,
    x = unpermute(z), x_{pi[t]} = z_t             rank = inverse(pi): x_j is generated rank[j]-th.

Read in generation order, an ARM whose logits at x_{pi[t]} depend on x_{pi(<t)} only is an ARM in
the natural order of the sequence z. `in_ordering(model, ordering)` is that ARM
(`GenerationOrderView`: event shape `(d,)`, no h), so every sampling method of tfps samples it
unchanged (`tfps.sampler_for_model(in_ordering(model, k))`); its sample for noise eps (in x
layout) is

    x = unpermute(ancestral_z(permute(eps))),

the ancestral sample in ordering pi. Predictive sampling stays exact: it finds the fixed point of
z = argmax(logits_z(z) + eps_z), which is the ancestral sample in that ordering [2, sec. 2.3].
`sample_in_ordering` does the permuting around any sampler of the view.

An ordering here is anything with `permutation`, `permute`, `unpermute`, `inverse` and `len()`
(`tfps.models.orderings.Ordering`, which also reads one from a name or a list of positions), or
None for the raster order. A family of orderings (`model.orderings`, e.g.
`tfps.models.farm_made.OrderedMADE`) is called as `model(x, ordering_index=k)` in its k-th
ordering and as `model(x)` in its first, `orderings[0]`, which need not be the raster order:
`sampling_order` names the ordering a model's plain call is autoregressive in, which
`tfps.sampler_for_model` samples through this view with noise, evidence and results in x layout
(`tfps.sampling.methods.MethodFunctions`, with `to_generation_order` and `to_x_layout`).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import numbers

import numpy as np
import tensorflow as tf

from tfps.sampling import events, protocol

# The fields of a `SampleResult` with one value per variable (the rest: per example, arm_calls).
PER_VARIABLE = ("samples", "converged_at", "accepted_at", "forecast_mistakes")
ORDERING_ATTRIBUTES = ("permutation", "permute", "unpermute", "inverse", "__len__")


def sampling_order(model):
    """The ordering a model's plain call `model(x)` is autoregressive in when that is not the
    raster order: a family's `orderings[0]`; None for every other model (raster order) and for a
    family whose first ordering is the natural one."""
    family = getattr(model, "orderings", None)
    if not family:
        return None
    first = family[0]
    return None if first.is_natural() else first


def resolve(model, ordering):
    """`(ordering, call options)` of `ordering` for `model`.

    For a family of orderings (`model.orderings`), an int k or the ordering `orderings[k]` itself
    selects `orderings[k]`, called with `ordering_index=k`. For a model without `orderings`, any
    ordering of its d variables, or None (its raster order), called without options.

    Raises:
      ValueError: an index out of range or into a model without `orderings`, an ordering of
        another length, or one that is not among the family's.
      TypeError: `ordering` neither an index nor an ordering (a name or a list of positions:
        `tfps.models.orderings.as_ordering` reads it into one first).
    """
    name, family = type(model).__name__, getattr(model, "orderings", None)
    if isinstance(ordering, (numbers.Integral, np.bool_, float)):
        if family is None:
            raise ValueError(f"{name} has no `orderings` to index; pass an Ordering")
        index = events.check_index(ordering, len(family))
        return family[index], {"ordering_index": index}
    if ordering is None and family is None:
        return None, {}
    if not all(hasattr(ordering, a) for a in ORDERING_ATTRIBUTES):
        raise TypeError(
            f"an ordering is an index into `model.orderings` or an Ordering of the model's "
            f"variables (tfps.models.orderings.as_ordering reads a name or a list of positions), "
            f"got {type(ordering).__name__}"
        )
    d = int(np.prod(protocol.event_shape_of(model)))
    if len(ordering) != d:
        raise ValueError(
            f"an ordering of {len(ordering)} positions does not order the {d} variables of "
            f"{name} (wrong length)"
        )
    if family is None:
        return ordering, {}
    for index, member in enumerate(family):
        if np.array_equal(member.permutation, ordering.permutation):
            return member, {"ordering_index": index}
    raise ValueError(f"{ordering!r} is not one of the {len(family)} orderings of {name}")


class GenerationOrderView(tf.Module):
    """A protocol ARM over z, a model's variables in generation order: event shape `(d,)`, no h;
    `view(z [B, d]) -> (logits float32 [B, d, K], None)` with logits_z = permute(logits(x)) at
    x = unpermute(z).

    Args:
      model: a protocol ARM, `model(x [B, *event_shape], training=..., **call_options)` ->
        logits `[B, *event_shape, K]` or a tuple `(logits, h)`; autoregressive in `ordering`.
      ordering: an ordering of its d variables (see the module), None for the raster order.
      call_options: extra keyword arguments of every model call (e.g. `ordering_index=k` of a
        family); none (`sampling_order`): the model's plain call, the very network a raster
        ARM's sampler would call.
    """

    def __init__(self, model, ordering, call_options=None):
        super().__init__(name="generation_order_view")
        protocol.check_protocol(model)
        self.x_shape = protocol.event_shape_of(model)
        self.num_variables = int(np.prod(self.x_shape))
        self.event_shape = (self.num_variables,)
        self.num_categories = int(model.num_categories)
        self.representation_channels = None
        self.ordering = ordering
        self.call_options = dict(call_options or {})
        self._model = model

    def __call__(self, z, training=False):
        x = to_x_layout(self.ordering, z, self.x_shape)
        out = self._model(x, training=training, **self.call_options)
        logits = tf.cast(out[0] if isinstance(out, (tuple, list)) else out, tf.float32)
        return to_generation_order(self.ordering, logits, self.num_categories), None

    def model_config(self):
        """The model's config, the call options and the ordering it is read in."""
        sampled_in = None if self.ordering is None else self.ordering.to_config()
        return {**self._model.model_config(), **self.call_options, "sampled_in": sampled_in}


def in_ordering(model, ordering):
    """The ARM over z = x in generation order of `ordering` (a `GenerationOrderView`) that every
    sampler takes (`tfps.sampler_for_model(in_ordering(model, k))`): `ordering` as `resolve`
    takes it. Check the model first: `tfps.check_autoregressive(model, ordering=...)`."""
    return GenerationOrderView(model, *resolve(model, ordering))


def to_generation_order(ordering, t, *trailing):
    """t `[B, *event_shape, *trailing]` in x layout -> `[B, d, *trailing]` in generation order
    (`ordering` None: the raster order, a reshape)."""
    t = tf.convert_to_tensor(t)
    if ordering is None:
        d = t.shape[1 : t.shape.rank - len(trailing)].num_elements()
        return events.reshape_batch(t, (-1 if d is None else d,) + tuple(trailing))
    return ordering.permute(events.reshape_batch(t, (len(ordering),) + tuple(trailing)))


def to_x_layout(ordering, t, event_shape):
    """t `[B, ...]` of the d variables of each example in generation order (`[B, d]`, or the
    loops' image layout) -> `[B, *event_shape]` in x layout (`ordering` None: a reshape)."""
    if ordering is not None:
        t = ordering.unpermute(tf.reshape(t, (-1, len(ordering))))
    return tf.reshape(t, (-1,) + tuple(event_shape))


def result_in_x_layout(result, ordering, event_shape):
    """A `SampleResult` of the ordered view (per variable in generation order) with every
    per-variable field (`PER_VARIABLE`) in x layout `[B, *event_shape]` (`to_x_layout`)."""
    return result._replace(
        **{f: to_x_layout(ordering, getattr(result, f), event_shape) for f in PER_VARIABLE}
    )


def sample_in_ordering(sampler, ordering, noise, method="fpi", evidence=None, evidence_mask=None):
    """The sample in `ordering` for noise (and evidence) in x layout, by any method of `sampler`,
    a sampler of the ordered view (`tfps.sampler_for_model(in_ordering(model, ordering))`).

    noise `[B, *event_shape, K]`, evidence int and mask bool `[B, *event_shape]`; returns the
    `SampleResult` with every per-variable field back in x layout `[B, *event_shape]`:
    `unpermute(sample(permute(noise)))`.
    """
    noise = tf.convert_to_tensor(noise)
    shape, d = tuple(noise.shape[1:-1]), len(ordering)
    if int(np.prod(shape)) != d:
        raise ValueError(f"noise of event shape {shape} does not hold the {d} ordered variables")

    def to_z(t, *trailing):
        return None if t is None else to_generation_order(ordering, t, *trailing)

    result = sampler.sample(
        to_z(noise, noise.shape[-1]), method, to_z(evidence), to_z(evidence_mask)
    )
    return result_in_x_layout(result, ordering, shape)
