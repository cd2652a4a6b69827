"""The ordered view: an ARM read in the order it generates its variables [1, sec. 3; 2, sec. 2.3].

An ARM autoregressive in an ordering pi of its d flat positions (position `pi[t]` is generated
t-th; `tfps.models.orderings.Ordering`) is, read in generation order z_t = x_{pi[t]}, an ARM in
the natural order of the sequence z. Every sampler of tfps runs on that view unchanged, and its
sample for noise eps (in x layout) is

    x = unpermute(ancestral_z(permute(eps))),

the ancestral sample in ordering pi: predictive sampling finds the fixed point of
z = argmax(logits_z(z) + eps_z), which is that sample [2, sec. 2.3].

A family of orderings (`model.orderings`, e.g. `tfps.models.farm_made.OrderedMADE`) is called
as `model(x)` in its first ordering, `orderings[0]`, which need not be the raster order:
`sampling_order` names the ordering a model's plain call is autoregressive in, and
`GenerationOrderView` is that call as a protocol ARM over z (event shape `(d,)`), which
`tfps.sampler_for_model` samples with noise, evidence and results in x layout
(`tfps.sampling.methods.MethodFunctions`).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import numpy as np
import tensorflow as tf

from tfps.sampling import events, protocol

# The fields of a `SampleResult` with one value per variable (the rest: per example, arm_calls).
PER_VARIABLE = ("samples", "converged_at", "accepted_at", "forecast_mistakes")


def sampling_order(model):
    """The ordering (`tfps.models.orderings.Ordering`) a model's plain call `model(x)` is
    autoregressive in when that is not the raster order: a family's `orderings[0]`; None for
    every other model (raster order) and for a family whose first ordering is the natural one."""
    family = getattr(model, "orderings", None)
    if not family:
        return None
    first = family[0]
    return None if first.is_natural() else first


class OrderedLogits(tf.Module):
    """`z [B, d] -> logits [B, d, K]` in generation order, of a model in x layout.

    Args:
      model: a Keras model or protocol ARM, `model(x [B, *event_shape], training=...)` ->
        logits `[B, *event_shape, K]` or a tuple `(logits, h)`; autoregressive in `ordering`.
      ordering: an `Ordering` of its d variables (anything with `permute` and `unpermute`).
      call_options: extra keyword arguments of every model call (e.g. `ordering_index=k` of
        `tfps.models.farm_made.OrderedMADE`).
    """

    def __init__(self, model, ordering, event_shape, num_categories, call_options=None):
        super().__init__(name="ordered_logits")
        self.model = model
        self.ordering = ordering
        self.event_shape = tuple(event_shape)
        self.num_categories = int(num_categories)
        self.call_options = dict(call_options or {})

    def __call__(self, z, training=False):
        x = events.reshape_batch(self.ordering.unpermute(z), self.event_shape)
        out = self.model(x, training=training, **self.call_options)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        logits = events.reshape_batch(logits, (len(self.ordering), self.num_categories))
        return self.ordering.permute(logits)


class GenerationOrderView(tf.Module):
    """A protocol ARM over z, a model's variables in the generation order of its plain call
    (`sampling_order`): event shape `(d,)`, no h; `view(z) -> (logits [B, d, K], None)`.

    The model is called as `model(x)` (for a family: ordering 0, its default), so the view holds
    the very network a raster ARM's sampler would call."""

    def __init__(self, model, ordering):
        super().__init__(name="generation_order_view")
        protocol.check_protocol(model)
        self.event_shape = (int(np.prod(protocol.event_shape_of(model))),)
        self.num_categories = int(model.num_categories)
        self.num_variables = self.event_shape[0]
        self.representation_channels = None
        self.ordering = ordering
        self._logits = OrderedLogits(
            model, ordering, protocol.event_shape_of(model), self.num_categories
        )
        self._model = model

    def __call__(self, z, training=False):
        return self._logits(z, training=training), None

    def model_config(self):
        return {**self._model.model_config(), "sampled_in": self.ordering.to_config()}


def to_generation_order(ordering, t, *trailing):
    """t `[B, *event_shape, *trailing]` in x layout -> `[B, d, *trailing]` in generation order."""
    return ordering.permute(events.reshape_batch(t, (len(ordering),) + tuple(trailing)))


def result_in_x_layout(result, ordering, event_shape):
    """A `SampleResult` of the ordered view (`[B, d]` per variable, generation order) with every
    per-variable field (`PER_VARIABLE`) back in x layout `[B, *event_shape]`."""
    return result._replace(
        **{
            f: events.reshape_batch(ordering.unpermute(getattr(result, f)), event_shape)
            for f in PER_VARIABLE
        }
    )
