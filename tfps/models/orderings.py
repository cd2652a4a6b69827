"""Orderings as data: the order in which an ARM generates the d variables of an event [1].

An ARM factorises p(x) = prod_t p(x_{pi(t)} | x_{pi(<t)}) in some ordering pi of the d flat
positions (raster order over all axes, channel last, `tfps.models.arms`). `Ordering` holds pi:
position `pi[t]` is generated t-th, and

    z = permute(x),  z_t = x_{pi[t]}              x in generation order,
    x = unpermute(z), x_{pi[t]} = z_t             rank = inverse(pi): x_j is generated rank[j]-th.

Presets: the 8 raster variants of an H x W image, `RASTER_VARIANTS` (start corner x rows or
columns first [1, sec. 3]): `tl_rows` is the natural raster order (top left, row by row, each row
left to right), `tl_cols` goes column by column (each top to bottom), `br_rows` is the reverse
raster order, ... The channels of a pixel stay together and in channel order: a variant orders
the pixels. `Ordering.random(d, seed)` draws a uniform permutation.

How an ARM is sampled in an ordering (the ordered view, `in_ordering`, `sample_in_ordering`) is
`tfps.sampling.ordered_view`'s job; it takes an `Ordering`, or an index into a family's
`orderings`, and `as_ordering` reads one from a name, JSON or a list of positions.
`tfps.check_autoregressive(..., ordering=pi)` checks a model in an ordering.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import json
import numbers

import numpy as np
import tensorflow as tf

from tfps.sampling import events

CORNERS = ("tl", "tr", "bl", "br")  # top left, top right, bottom left, bottom right
RASTER_VARIANTS = tuple(f"{corner}_{axis}" for corner in CORNERS for axis in ("rows", "cols"))
NATURAL = "tl_rows"


def _integers(permutation):
    """The permutation as a 1-D int64 array; ValueError unless a 1-D sequence of integers."""
    values = np.asarray(permutation, dtype=object)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"an ordering is a non-empty 1-D list of the positions 0 .. d-1, got shape "
            f"{values.shape}"
        )
    wrong = [
        v for v in values if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral)
    ]
    if wrong:
        raise ValueError(
            f"an ordering holds integer positions, got {wrong[0]!r} ({type(wrong[0]).__name__})"
        )
    return values.astype(np.int64)


class Ordering:
    """A permutation `pi` of the d flat positions of an event: position `pi[t]` is generated t-th.

    Args:
      permutation: the ints 0 .. d-1, each once (a list, tuple or integer array).
      num_variables: d, if known: a permutation of another length is refused.
      name: an optional label (a raster variant's name, `"random(seed=3)"`, ...).

    Raises:
      ValueError naming the problem: not integers, wrong length, out of range, or a repeat.
    """

    def __init__(self, permutation, num_variables=None, name=None):
        pi = _integers(permutation)
        d = len(pi)
        if num_variables is not None and d != int(num_variables):
            raise ValueError(
                f"an ordering of {int(num_variables)} variables needs {int(num_variables)} "
                f"positions, got {d} (wrong length)"
            )
        outside = pi[(pi < 0) | (pi >= d)]
        if outside.size:
            raise ValueError(f"ordering position {int(outside[0])} is out of range [0, {d})")
        values, counts = np.unique(pi, return_counts=True)
        if values.size != d:
            missing = sorted(set(range(d)) - set(values.tolist()))
            raise ValueError(
                f"ordering position {int(values[counts > 1][0])} is repeated (and {missing[0]} "
                f"missing): an ordering holds each of 0 .. {d - 1} once"
            )
        self.permutation = pi
        self.permutation.setflags(write=False)
        self.name = None if name is None else str(name)

    @classmethod
    def natural(cls, num_variables):
        """The identity: the raster order of the flattened event (every tfps ARM's default)."""
        return cls(np.arange(int(num_variables)), name=NATURAL)

    @classmethod
    def raster(cls, height, width, channels=1, variant=NATURAL):
        """One of the 8 `RASTER_VARIANTS` of an H x W image with C channels (`"<corner>_rows"`:
        row by row from that corner, each row walked away from it; `"<corner>_cols"`: column by
        column). The C channels of a pixel stay consecutive and in channel order."""
        if variant not in RASTER_VARIANTS:
            raise ValueError(
                f"unknown raster variant {variant!r}; choose one of {', '.join(RASTER_VARIANTS)}"
            )
        pixels = np.arange(int(height) * int(width)).reshape(int(height), int(width))
        corner, axis = variant.split("_")
        if corner[0] == "b":
            pixels = pixels[::-1]
        if corner[1] == "r":
            pixels = pixels[:, ::-1]
        if axis == "cols":
            pixels = pixels.T
        c = int(channels)
        return cls((pixels.reshape(-1, 1) * c + np.arange(c)).reshape(-1), name=variant)

    @classmethod
    def random(cls, num_variables, seed=0):
        """A uniformly random permutation of d positions, drawn with numpy from `seed`."""
        pi = np.random.default_rng(seed).permutation(int(num_variables))
        return cls(pi, name=f"random(seed={seed})")

    @property
    def num_variables(self):
        return len(self.permutation)

    def __len__(self):
        return len(self.permutation)

    @property
    def inverse(self):
        """rank: `rank[j]` is the generation step of position j (`rank[pi[t]] = t`)."""
        rank = np.empty_like(self.permutation)
        rank[self.permutation] = np.arange(len(self.permutation))
        return rank

    def is_natural(self):
        return bool(np.array_equal(self.permutation, np.arange(len(self.permutation))))

    def permute(self, x):
        """x `[B, d, ...]` (position order) -> z `[B, d, ...]` (generation order), z_t = x_pi[t]."""
        return tf.gather(x, self.permutation, axis=1)

    def unpermute(self, z):
        """z `[B, d, ...]` in generation order -> x `[B, d, ...]`, x_pi[t] = z_t."""
        return tf.gather(z, self.inverse, axis=1)

    def to_config(self):
        """A JSON-able dict `{"name", "permutation"}` (what a run config or export records)."""
        return {"name": self.name, "permutation": self.permutation.tolist()}

    def to_json(self):
        return json.dumps(self.to_config())

    @classmethod
    def from_json(cls, value, num_variables=None):
        """The ordering of `to_json()` text or a `to_config()` dict (validated again)."""
        config = json.loads(value) if isinstance(value, str) else dict(value)
        return cls(config["permutation"], num_variables, config.get("name"))

    def __eq__(self, other):
        return isinstance(other, Ordering) and np.array_equal(self.permutation, other.permutation)

    def __hash__(self):
        return hash(self.permutation.tobytes())

    def raster_variant(self, event_shape):
        """The name of the raster variant (`RASTER_VARIANTS`) this ordering is for an event of
        `event_shape` (in the engine's `(H, W, C)` layout), or None if it is none of them."""
        height, width, channels = events.canonical_shape(event_shape)
        for variant in RASTER_VARIANTS:
            if Ordering.raster(height, width, channels, variant) == self:
                return variant
        return None

    def pixel_order(self, channels):
        """The pixels of an ordering that keeps each pixel's C channels together and in order (as
        the raster variants do): pixel `pixel_order(C)[t]` is generated t-th."""
        return self.permutation[::channels] // channels

    def __repr__(self):
        shown = ", ".join(map(str, self.permutation[:8])) + (", ..." if len(self) > 8 else "")
        label = f"{self.name!r}, " if self.name else ""
        return f"Ordering({label}[{shown}], d={len(self)})"


def as_ordering(value, event_shape):
    """An `Ordering` of an event from an `Ordering`, a raster variant name (images `(H, W, C)`
    and sequences, whose `tl_rows` is the natural order), a `to_config()` dict or `to_json()`
    text, or a list of positions; validated against d = prod(event_shape)."""
    shape = events.check_event_shape(event_shape)
    d = int(np.prod(shape))
    if isinstance(value, Ordering):
        return Ordering(value.permutation, d, value.name)
    if isinstance(value, str) and not value.lstrip().startswith("{"):
        height, width, channels = events.canonical_shape(shape)
        return Ordering.raster(height, width, channels, value)
    if isinstance(value, (str, dict)):
        return Ordering.from_json(value, d)
    return Ordering(value, d)
