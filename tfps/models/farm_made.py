"""FARM + MADE: one MADE [2] with k orderings and shared weights, the ordering an input [1, sec. 3].

A MADE (`tfps.models.made`) assigns every unit a degree: the K one-hot inputs and the K outputs of
variable j have the degree of j, hidden units degrees in [1, d - 1], and a unit sees the units of
lower (input: lower or equal) degree. In ordering pi (`tfps.models.orderings.Ordering`) the
variable at flat position j is generated at step rank[j] = pi^{-1}[j], so its degree is
rank[j] + 1: the ordering enters the input mask and the output mask only, while the hidden units
keep one degree assignment, hence the hidden-to-hidden masks and every weight are shared:

    input mask  M_k[j-unit, u] = 1[m(u) >= rank_k[j] + 1]     (one per ordering)
    hidden mask M[u', u]       = 1[m(u) >= m(u')]              (shared)
    output mask M_k[u, j-unit] = 1[rank_k[j] + 1 > m(u)]       (one per ordering)

so the logits of x_j in ordering k depend on the variables generated before j in that ordering
only. One kernel per layer serves all k orderings: `call(x, ordering_index=k)` multiplies it by the
masks of ordering k (`made.MaskedDense` with stacked masks). With one hidden layer both masks that
touch it change with k; that is FARM's "change the enumeration in the initial layer" [1, sec. 3],
whose output degrees are the input enumeration's (as in MADE's own order-agnostic training [2,
sec. 4.2]): changing the first mask alone would leave the outputs in the natural order and the model
not autoregressive in pi. Hidden degrees are spread evenly over [1, d - 1], as `made.MADE` does.

Sampling: `call` is autoregressive in `orderings[k]`, not in raster order, so sample ordering k
through its ordered view, `tfps.sampling.ordered_view.in_ordering(model, k)` (and
`sample_in_ordering`): every method of tfps is exact there. `tfps.sampler_for_model` on the
model itself samples its first ordering, `orderings[0]`, whatever it is (through the ordered view
when it is not the raster order: `tfps.sampling.ordered_view`). A run trains the family with one of
`tfps.train.ordering_objectives` (FARM's Monte Carlo, ensemble and KL losses, or the mixture
likelihood); `call(x, training=True)` alone trains ordering 0.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder for
     Distribution Estimation. In ICML, 2015.
"""

import keras
import numpy as np

from tfps.models import arm_base, family, made
from tfps.models import layers as tfps_layers
from tfps.sampling import events

ARCH = "farm_made"
RUN_CONFIG_FIELDS = {**made.RUN_CONFIG_FIELDS, "orderings": "orderings"}


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class OrderedMADE(family.OrderingFamily, made.MADE):
    """A categorical MADE with k orderings sharing all weights [1, sec. 3] (see the module).

        logits, h = model(x, ordering_index=k)   logits of x_j from the x generated before j in
                                                 orderings[k]; h None

    Args:
      event_shape: `(H, W, C)`, `(L,)` or `(L, C)`.
      num_categories: K >= 2.
      orderings: the k orderings (`tfps.models.family.orderings_of`): e.g.
        `orderings.RASTER_VARIANTS` for FARM's 8 raster variants [1, sec. 3], or `Ordering`s;
        default the natural order.
      hidden_units, num_layers, dropout_rate: as `tfps.models.made.MADE` ([1]: 2 x 1000).

    `model_config()["orderings"]` records each ordering (`Ordering.to_config()`).

    #### References

    [1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
         University, report.
    """

    ARCH = ARCH

    def __init__(
        self,
        event_shape,
        num_categories,
        orderings=None,
        hidden_units=500,
        num_layers=1,
        dropout_rate=0.0,
        **kwargs,
    ):
        # Before MADE.__init__, which builds the masks from them (a tuple: not tracked by Keras).
        self.orderings = family.orderings_of(orderings, arm_base.check_event_shape(event_shape))
        super().__init__(
            event_shape,
            num_categories,
            hidden_units=hidden_units,
            num_layers=num_layers,
            dropout_rate=dropout_rate,
            **kwargs,
        )

    def masks(self):
        """The masks of `made.MADE.masks`, the first and the last stacked `[k, n_in, n_out]` (one
        per ordering: the variables' degrees are their generation steps + 1), the hidden-to-hidden
        ones shared."""
        per_ordering = [
            made.made_masks(
                made.made_degrees(
                    self.num_variables,
                    self.num_categories,
                    self.hidden_units,
                    self.num_layers,
                    variable_degrees=ordering.inverse + 1,
                )
            )
            for ordering in self.orderings
        ]
        first = np.stack([masks[0] for masks in per_ordering])
        last = np.stack([masks[-1] for masks in per_ordering])
        return [first] + per_ordering[0][1:-1] + [last]

    def pixel_dependencies(self, ordering_index=0):
        """bool `[P, P]` over the P pixels of the canonical `(H, W, C)` image (raster indices):
        `[t, s]` True where some path of the masks of ordering `ordering_index` leads from a
        channel of pixel s to a channel of pixel t != s (the product of the masks: a superset of
        what any weights realise; what `tfps.sampling.farm_parallel.required_skew` reads)."""
        index = self.check_ordering_index(ordering_index)
        masks = self.masks()
        reach = masks[0][index]
        for mask in masks[1:]:
            mask = mask[index] if mask.ndim == 3 else mask
            reach = (reach.astype(np.float64) @ mask) > 0
        height, width, channels = events.canonical_shape(self.event_shape)
        pixels, k = height * width, self.num_categories
        variables = reach.reshape(pixels, channels, k, pixels, channels, k).any(axis=(1, 2, 4, 5))
        dependencies = variables.T.copy()  # [target, source]
        np.fill_diagonal(dependencies, False)
        return dependencies

    def call(self, x, training=False, ordering_index=0):
        ordering_index = self.check_ordering_index(ordering_index)
        return self.flat_call(x, training=training, mask_index=ordering_index)

    def options(self):
        return {**super().options(), **self.family_options()}
