"""Incremental ARM calls: recompute only the image rows that a changed input can reach.

Every op of the PixelCNN (`tfps.pixelcnn`) is per pixel, a shift, or a causal convolution whose
output row r reads only input rows r - kh + 1 .. r; the stride-2 downsampling's output row a
reads rows 2a - 1, 2a; the stride-2 upsampling's output rows 2a, 2a + 1 read only row a. So if
the input rows < s are those of a cached call, every map's rows < s / 2**k at scale k are the
cached ones, for s a multiple of 2**(num_scales - 1) (docs/incremental.md). A *row band* call
feeds the network only input rows >= s: each shifted convolution takes the kh - 1 rows above the
band from a cache of its previous input (`RowBand.above`) and writes the band into it, and the
logits and h of the rows above come from the cache as well. One band call costs about
(H - s) / H of a full call.

Two ARMs build on it, both exact (they return a full call's logits up to float rounding: a
convolution on fewer rows may round differently in the last bit, which would change a sample only
if it flipped an argmax tie of the Gumbel-max map):

  * `BandArm` (`incremental=True` on `tfps.sampling.PredictiveSampler`): each call starts its
    band at the row of the first variable whose input differs from the previous call's (the
    smallest over the batch; row 0 for an example without a previous call), rounded down to one
    of at most `max_bands` static starts chosen with `tf.switch_case`, so shapes are static for
    XLA.
  * `CachedAncestralArm` (the `ancestral_cached` method): ancestral sampling in the style of fast
    PixelCNN++ generation [2]: each call computes one group of `group` rows at a per-example
    dynamic offset (gathered from and scattered into caches padded to a whole number of groups),
    the group holding the variable that the call samples, with the cached rows above.

Both take the calls of `tfps.sampling_loop.ArmLoop`: `initial(x, needed)` and `update(x, changed,
needed, cache)` with flat raster positions (`changed`: the first variable whose input changed,
`needed`: the one the call samples), which they map to rows (position // (W * C)).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Prajit Ramachandran, Tom Le Paine, Pooya Khorrami, Mohammad Babaeizadeh, Shiyu Chang, Yang
     Zhang, Mark Hasegawa-Johnson, Roy Campbell, Thomas Huang. Fast Generation for Convolutional
     Autoregressive Models. In ICLR Workshop, 2017.
"""

import math

import tensorflow as tf

DEFAULT_MAX_BANDS = 16


def row_alignment(model):
    """The band starts must be multiples of 2**(num_scales - 1) rows (integer rows at every
    scale)."""
    return 2 ** (int(getattr(model, "num_scales", 1)) - 1)


def row_size(model):
    """W * C, the variables in one image row: flat position p lies in row p // (W * C)."""
    return int(model.image_shape[1]) * int(model.image_shape[2])


def supports_incremental(model):
    """Whether `model` takes row bands (`model(x, rows=...)`, as `tfps.pixelcnn.PixelCNN`)."""
    return hasattr(model, "resnet_pairs") and hasattr(model, "image_shape")


def cached_ancestral_arm(model):
    """The ARM of the sampling method `ancestral_cached` for `model`: a `CachedAncestralArm`
    where the model takes row bands, else the model's own (`model.cached_ancestral_arm()`, e.g.
    the key/value caches of `tfps.transformer.Transformer`), else None."""
    if supports_incremental(model):
        return CachedAncestralArm(model)
    own = getattr(model, "cached_ancestral_arm", None)
    return None if own is None else own()


def sampler_arms(model, incremental=False):
    """The `incremental_arm` and `cached_ancestral_arm` of `tfps.sampling.PredictiveSampler` for
    `model`: a `BandArm` if `incremental`, and `cached_ancestral_arm(model)`. ValueError for
    `incremental` on a model without row bands (only `tfps.pixelcnn.PixelCNN` has them).
    """
    supported = supports_incremental(model)
    if incremental and not supported:
        raise ValueError(
            f"incremental ARM calls need row bands, which only PixelCNN models (arch 'pixelcnn') "
            f"take; {type(model).__name__} does not"
        )
    return {
        "incremental_arm": BandArm(model) if incremental else None,
        "cached_ancestral_arm": cached_ancestral_arm(model),
    }


def band_starts(height, alignment, max_bands=DEFAULT_MAX_BANDS):
    """The static band starts: multiples of a step (a multiple of `alignment`) below `height`, at
    most `max_bands` of them."""
    if int(max_bands) < 1:
        raise ValueError(f"max_bands must be >= 1, got {max_bands}")
    groups = math.ceil(height / alignment)
    step = alignment * math.ceil(groups / int(max_bands))
    return list(range(0, height, step))


def _pad_rows(x, top, bottom):
    paddings = [[0, 0]] * x.shape.rank
    paddings[1] = [top, bottom]
    return tf.pad(x, paddings)


class RowBand:
    """A band of rows [start, H) for `model(x[:, start:], rows=band)` (static start).

    `cache`: the tuple of maps the previous call recorded (None: a full call, start 0, that
    records them). After the call, `recorded` holds the new cache in the same order: each shifted
    convolution's full input, then the logits and h (`full`).
    """

    def __init__(self, cache=None):
        self.cache = cache
        self.recorded = []

    def _record(self, x):
        if self.cache is None:
            full = x
        else:
            previous = self.cache[len(self.recorded)]
            first = previous.shape[1] - x.shape[1]
            full = tf.concat([previous[:, :first], x], axis=1) if first else x
        self.recorded.append(full)
        return full

    def above(self, x, halo):
        """x (the band's rows of a map) with the `halo` rows above it prepended: cached, or zeros
        above the image."""
        if halo == 0:
            return x
        full = self._record(x)
        low = full.shape[1] - x.shape[1] - halo
        return full[:, low:] if low >= 0 else _pad_rows(full, -low, 0)

    def full(self, x):
        """The whole map: the cached rows above the band and x."""
        return self._record(x)


class BandArm:
    """Incremental calls of a `tfps.pixelcnn.PixelCNN` in inference mode.

    `initial(x, needed=None) -> (logits, h, cache)`: a full call that records the cache.
    `update(x, changed, needed, cache) -> (logits, h, cache)`: the logits and h of x, computing
    rows from the row of min(changed) on; changed int32 `[B]` is the first flat position where x
    differs from the previous call's input (d: unchanged). `needed` is unused (all rows are
    computed).
    """

    def __init__(self, model, max_bands=DEFAULT_MAX_BANDS):
        if not supports_incremental(model):
            raise ValueError(f"{type(model).__name__} does not support incremental calls")
        self.model = model
        self.height = int(model.image_shape[0])
        self.row_size = row_size(model)
        self.starts = band_starts(self.height, row_alignment(model), max_bands)

    def band(self, x, start, cache):
        """The cache after a band call from the static row `start` (cache None: a full call)."""
        band = RowBand(cache)
        logits, h = self.model(x[:, start:], training=False, rows=band)
        band.full(logits)
        band.full(h)
        return tuple(band.recorded)

    def initial(self, x, needed=None):
        del needed
        cache = self.band(x, 0, None)
        return cache[-2], cache[-1], cache

    def band_index(self, changed_row):
        """The branch of `update` for these changed rows: the last start <= min(changed_row);
        len(starts) when nothing changed."""
        start = tf.reduce_min(changed_row)
        starts = tf.constant(self.starts, tf.int32)
        index = tf.reduce_sum(tf.cast(starts <= start, tf.int32)) - 1
        return tf.where(start >= self.height, len(self.starts), index)

    def update(self, x, changed, needed, cache):
        del needed
        branches = [lambda s=s: self.band(x, s, cache) for s in self.starts]
        branches.append(lambda: tuple(tf.identity(t) for t in cache))
        cache = tuple(tf.switch_case(self.band_index(changed // self.row_size), branches))
        return cache[-2], cache[-1], cache


class GroupBand:
    """A band of `group` rows at a per-example dynamic offset, on caches padded with one zero row
    on top and to a whole number of groups at the bottom (row r at index r + 1).

    starts: int32 `[B]`, each example's first row (a multiple of `group`).
    """

    def __init__(self, cache, starts, group):
        self.cache = cache
        self.starts = starts
        self.group = group
        self.recorded = []

    def _rows(self, height, count, offset):
        """int32 `[B, count, 2]` (example, padded row) indices of the rows from the band's first
        row + `offset`, at the scale where the band is `height` rows."""
        first = self.starts // (self.group // height) + 1 + offset
        rows = first[:, None] + tf.range(count)[None, :]
        examples = tf.broadcast_to(tf.range(tf.shape(rows)[0])[:, None], tf.shape(rows))
        return tf.stack([examples, rows], axis=-1)

    def _record(self, x):
        previous = self.cache[len(self.recorded)]
        rows = self._rows(x.shape[1], x.shape[1], 0)
        self.recorded.append(tf.tensor_scatter_nd_update(previous, rows, x))
        return previous

    def above(self, x, halo):
        if halo == 0:
            return x
        if halo > 1:
            raise ValueError(f"cached bands keep one row above, not {halo}")
        previous = self._record(x)
        return tf.concat([tf.gather_nd(previous, self._rows(x.shape[1], 1, -1)), x], axis=1)

    def full(self, x):
        self._record(x)
        return self.recorded[-1]


class CachedAncestralArm:
    """The ARM of `ancestral_cached`: each call computes the group of rows holding the variable
    being sampled (`needed`), and more groups only where rows above it are stale.

    The cache holds the padded maps (`GroupBand`) and, last, int32 `[B]` rows valid for the
    previous input. `update(x, changed, needed, cache)` (flat positions, as `BandArm`'s): rows
    valid for x are those below min(valid, changed row); groups are computed from there (one per
    example per pass) until every example's needed row (H: none) is valid. The logits and h
    returned are exact on the rows up to the needed row; rows below may be stale, which ancestral
    sampling never reads. `initial(x, needed=None)` is a full call.
    """

    def __init__(self, model, group=None):
        if not supports_incremental(model):
            raise ValueError(f"{type(model).__name__} does not support incremental calls")
        self.model = model
        self.height = int(model.image_shape[0])
        self.row_size = row_size(model)
        alignment = row_alignment(model)
        self.group = int(group or alignment)
        if self.group < 1 or self.group % alignment:
            raise ValueError(f"group must be a multiple of {alignment}, got {self.group}")
        self.padded_height = self.group * math.ceil(self.height / self.group)
        self._full = BandArm(model)

    def _padded(self, t):
        """A full map at scale k (`[B, ceil(H / 2**k), ...]`) in the padded layout."""
        scale = 1
        while -(-self.height // scale) != t.shape[1]:
            scale *= 2
        return _pad_rows(t, 1, self.padded_height // scale - t.shape[1])

    def _outputs(self, cache):
        return cache[-3][:, 1 : self.height + 1], cache[-2][:, 1 : self.height + 1]

    def initial(self, x, needed=None):
        del needed
        maps = self._full.initial(x)[2]
        valid = tf.fill(tf.shape(x)[:1], self.height)
        cache = tuple(self._padded(t) for t in maps) + (valid,)
        return (*self._outputs(cache), cache)

    def _group(self, x, starts, maps):
        band = GroupBand(maps, starts, self.group)
        x = _pad_rows(x, 0, self.padded_height - self.height)
        x = tf.gather(x, starts[:, None] + tf.range(self.group)[None, :], axis=1, batch_dims=1)
        logits, h = self.model(x, training=False, rows=band)
        band.full(logits)
        band.full(h)
        return tuple(band.recorded)

    def update(self, x, changed, needed, cache):
        maps, valid = cache[:-1], tf.minimum(cache[-1], changed // self.row_size)
        needed_row = needed // self.row_size
        needed = tf.where(needed_row < self.height, needed_row, -1)

        def body(maps, valid):
            starts = tf.minimum(valid // self.group * self.group, self.padded_height - self.group)
            maps = self._group(x, starts, maps)
            return maps, tf.minimum(tf.maximum(valid, starts + self.group), self.height)

        maps, valid = tf.while_loop(
            lambda maps, valid: tf.reduce_any(needed >= valid),
            body,
            (maps, valid),
            maximum_iterations=self.padded_height // self.group,
        )
        cache = tuple(maps) + (valid,)
        return (*self._outputs(cache), cache)
