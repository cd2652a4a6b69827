"""A family of orderings: one ARM, k orderings of its variables, the ordering an input [1, sec. 3].

A family model (`tfps.models.farm_made.OrderedMADE`, `tfps.models.farm_pixelcnn.OrderedPixelCNN`)
has `orderings`, a tuple of k `tfps.models.orderings.Ordering`s, and

    logits, h = model(x, ordering_index=i)     logits of x_j from the x generated before j in
                                               orderings[i]; i a Python int or an int32 tensor

Everything that takes a family reads only that: the ordered view and its samplers
(`tfps.sampling.ordered_view.in_ordering`), the objectives (`tfps.train.ordering_objectives`),
inpainting (`tfps.sampling.inpainting`), FARM's parallel sampling and diagonal schedule
(`tfps.sampling.farm_parallel`) and the serving module; a family may also give
`pixel_dependencies(i)`, the pixels its structure lets each pixel's logits see in ordering i (the
diagonal schedule's exact skew). This module holds what every family shares: reading the orderings
of a config (`orderings_of`), the index check, and the model with one ordering fixed
(`OneOrdering`).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import tensorflow as tf

from tfps.models import orderings as orderings_lib
from tfps.sampling import events

ALL_RASTER = "raster8"  # a run config's name for the 8 raster variants


def orderings_of(orderings, event_shape):
    """The tuple of `Ordering`s of a family: each entry an `Ordering`, a raster variant name, a
    `to_config()` dict, `to_json()` text or a list of positions (default: the natural order); a
    run config's text, comma-separated raster variant names or `raster8` (all 8), is split.
    ValueError for none, a repeat, or one that is not an ordering of the event."""
    values = [orderings_lib.NATURAL] if orderings is None else orderings
    if isinstance(values, str) and not values.lstrip().startswith("{"):
        names = [name.strip() for name in values.split(",")]
        values = list(orderings_lib.RASTER_VARIANTS) if names == [ALL_RASTER] else names
    if isinstance(values, (str, dict, orderings_lib.Ordering)):
        values = [values]
    family = tuple(orderings_lib.as_ordering(o, event_shape) for o in values)
    if not family:
        raise ValueError("a family of orderings needs at least one ordering")
    if len(set(family)) != len(family):
        raise ValueError(f"the orderings of a family must differ, got {list(family)}")
    return family


class OrderingFamily:
    """The mixin of a family model: `num_orderings`, `check_ordering_index`, `one_ordering` and
    the orderings in `options()`. The model sets `self.orderings` (`orderings_of`)."""

    @property
    def num_orderings(self):
        return len(self.orderings)

    def check_ordering_index(self, ordering_index):
        """`ordering_index` checked: a Python int outside [0, k) (or a bool) is a ValueError; an
        integer tensor is returned behind an in-graph assert that it lies in [0, k)
        (InvalidArgumentError), because `tf.gather` on a GPU returns zeros for an index out of
        range instead of failing. Under XLA the assert compiles away (the `mc` objective's index
        is drawn in range). Call sites use the returned index."""
        return events.check_index(ordering_index, self.num_orderings)

    def one_ordering(self, index):
        """The model with ordering `index` fixed, as a protocol ARM in x layout (`model(x)` ->
        `(logits, h)`, autoregressive in `orderings[index]`), e.g. for
        `check_autoregressive(model.one_ordering(k), ordering=model.orderings[k])`."""
        return OneOrdering(self, self.check_ordering_index(index))

    def family_options(self):
        return {"orderings": [o.to_config() for o in self.orderings]}


class OneOrdering(tf.Module):
    """A family model with one ordering index fixed, with the ARM protocol's attributes."""

    def __init__(self, model, index):
        super().__init__(name=f"ordering_{index}")
        self.model, self.index = model, int(index)
        self.event_shape, self.num_categories = model.event_shape, model.num_categories
        self.num_variables = model.num_variables
        self.representation_channels = model.representation_channels

    def __call__(self, x, training=False):
        return self.model(x, training=training, ordering_index=self.index)

    def model_config(self):
        return {**self.model.model_config(), "ordering_index": self.index}
