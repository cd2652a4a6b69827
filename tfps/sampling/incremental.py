"""Incremental ARM calls: recompute only the image rows that the sampler needs and a changed input
can reach.

Every op of the PixelCNN (`tfps.models.pixelcnn`) is per pixel, a shift, or a causal convolution
whose output row r reads only input rows r - kh + 1 .. r; the stride-2 downsampling's output row a
reads rows 2a - 1, 2a; the stride-2 upsampling's output rows 2a, 2a + 1 read only row a. So if
the input rows < s are those of a cached call, every map's rows < s / 2**k at scale k are the
cached ones, for s a multiple of 2**(num_scales - 1) (docs/incremental.md). A *window* call feeds
the network only input rows s .. s + window - 1: each shifted convolution takes the row above the
window from a cache of its previous input (`WindowBand.above`) and writes the window into it. One
window call costs about window / H of a full call.

`WindowArm` keeps, per example, the rows on which its cache is exact, and computes windows at
per-example dynamic offsets (gathered from and scattered into the caches, so shapes are static
for XLA) until the row each example needs next is exact. Its logits are a full call's up to float
rounding on those rows (a convolution on fewer rows may round differently in the last bit, which
would change a sample only if it flipped an argmax tie of the Gumbel-max map); on the rows
below, which the call did not compute for this input, its logits repeat its last exact row's, a
forecast: `tfps.sampling.loops.ArmLoop` may forecast from them (fpi) and never accepts them. So
every method stays exact [1]:

  * `incremental=True` on `tfps.sampling.predictive.sampler_for_model` (`--incremental`): every
    method calls a `WindowArm` with windows of `DEFAULT_WINDOW_ROWS` rows.
  * `ancestral_cached`: ancestral sampling with the smallest window, the cached ancestral sampler
    of fast PixelCNN++ generation [2].

`WindowArm` takes the calls of `tfps.sampling.loops.ArmLoop`: `empty_cache(batch)` and `update(x,
changed, needed, cache)` with flat raster positions (`changed`: the first variable whose input
changed, `needed`: the one the call must make exact), which it maps to rows (position // (W C)).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.

[2]: Prajit Ramachandran, Tom Le Paine, Pooya Khorrami, Mohammad Babaeizadeh, Shiyu Chang, Yang
     Zhang, Mark Hasegawa-Johnson, Roy Campbell, Thomas Huang. Fast Generation for Convolutional
     Autoregressive Models. In ICLR Workshop, 2017.
"""

import math

import tensorflow as tf

# Rows an incremental call computes per example (`WindowArm`): 8 of a 28-row digit's rows, the
# graph-mode choice; under XLA a call costs about its rows and smaller windows pay off
# (docs/incremental.md has the measured trade-off).
DEFAULT_WINDOW_ROWS = 8


def row_alignment(model):
    """Windows start at multiples of 2**(num_scales - 1) rows (integer rows at every scale)."""
    return 2 ** (int(getattr(model, "num_scales", 1)) - 1)


def row_size(model):
    """W * C, the variables in one image row: flat position p lies in row p // (W * C)."""
    return int(model.image_shape[1]) * int(model.image_shape[2])


def supports_incremental(model):
    """Whether `model` takes row windows (`model(x, rows=...)`, as
    `tfps.models.pixelcnn.PixelCNN`)."""
    return hasattr(model, "resnet_pairs") and hasattr(model, "image_shape")


def cached_ancestral_arm(model):
    """The ARM of the sampling method `ancestral_cached` for `model`: a `WindowArm` with the
    smallest window where the model takes row windows, else the model's own
    (`model.cached_ancestral_arm()`, e.g. the key/value caches of
    `tfps.models.transformer.Transformer`), else None."""
    if supports_incremental(model):
        return WindowArm(model)
    own = getattr(model, "cached_ancestral_arm", None)
    return None if own is None else own()


def sampler_arms(model, incremental=False):
    """The `incremental_arm` and `cached_ancestral_arm` of
    `tfps.sampling.predictive.PredictiveSampler` for `model`. `incremental`: False; True, windows of
    `DEFAULT_WINDOW_ROWS` rows; or a window height in rows (`WindowArm`; rounded up to a multiple of
    2**(S - 1)); and `cached_ancestral_arm(model)`. ValueError for `incremental` on a model without
    row windows (only `tfps.models.pixelcnn.PixelCNN` has them).
    """
    supported = supports_incremental(model)
    if incremental and not supported:
        raise ValueError(
            f"incremental ARM calls need row bands, which only PixelCNN models (arch 'pixelcnn') "
            f"take; {type(model).__name__} does not"
        )
    return {
        "incremental_arm": WindowArm(model, window_rows(model, incremental))
        if incremental
        else None,
        "cached_ancestral_arm": cached_ancestral_arm(model),
    }


def window_rows(model, incremental=True):
    """The window of `incremental` (True: `DEFAULT_WINDOW_ROWS`; an int: that many rows), rounded
    up to a multiple of 2**(S - 1) and at most the image's height rounded up so."""
    rows = DEFAULT_WINDOW_ROWS if incremental is True else int(incremental)
    if rows < 1:
        raise ValueError(f"an incremental window needs at least one row, got {incremental}")
    alignment = row_alignment(model)
    height = int(model.image_shape[0])
    return alignment * math.ceil(min(rows, height) / alignment)


def _pad_rows(x, top, bottom):
    paddings = [[0, 0]] * x.shape.rank
    paddings[1] = [top, bottom]
    return tf.pad(x, paddings)


class FullCall:
    """The rows of a full call (`model(x, rows=FullCall())`): records every map that a window
    reads from the cache, each shifted convolution's input (zero rows above the image)."""

    def __init__(self):
        self.recorded = []

    def above(self, x, halo):
        if halo == 0:
            return x
        self.recorded.append(x)
        return _pad_rows(x, halo, 0)


class WindowBand:
    """A window of `window` rows at a per-example dynamic offset, on caches padded with one zero
    row on top and to a whole number of windows at the bottom (row r at index r + 1).

    starts: int32 `[B]`, each example's first row (a multiple of 2**(S - 1)).
    """

    def __init__(self, cache, starts, window):
        self.cache = cache
        self.starts = starts
        self.window = window
        self.recorded = []

    def _rows(self, height, count, offset):
        """int32 `[B, count, 2]` (example, padded row) indices of the rows from the window's first
        row + `offset`, at the scale where the window is `height` rows."""
        first = self.starts // (self.window // height) + 1 + offset
        rows = first[:, None] + tf.range(count)[None, :]
        examples = tf.broadcast_to(tf.range(tf.shape(rows)[0])[:, None], tf.shape(rows))
        return tf.stack([examples, rows], axis=-1)

    def _record(self, rows, halo=0):
        """Writes `rows` (the window's, below `halo` rows above it) into the next cache."""
        height = rows.shape[1] - halo
        previous = self.cache[len(self.recorded)]
        indices = self._rows(height, rows.shape[1], -halo)
        self.recorded.append(tf.tensor_scatter_nd_update(previous, indices, rows))

    def above(self, x, halo):
        if halo == 0:
            return x
        if halo > 1:
            raise ValueError(f"cached windows keep one row above, not {halo}")
        # The window is written back with its halo row (unchanged): the write then depends on the
        # read, so XLA updates the cache in place instead of copying it twice per layer.
        previous = self.cache[len(self.recorded)]
        window = tf.concat([tf.gather_nd(previous, self._rows(x.shape[1], 1, -1)), x], axis=1)
        self._record(window, halo)
        return window

    def full(self, x):
        self._record(x)
        return self.recorded[-1]


class WindowArm:
    """Incremental calls of a `tfps.models.pixelcnn.PixelCNN` in windows of rows, one per example.

    `initial(x) -> (logits, h, cache)`: a full call; `empty_cache(batch)`: the cache of no
    call, which a batch's first call updates. `update(x, changed, needed, cache)`, with flat
    raster positions int32 `[B]` (`tfps.sampling.loops.ArmLoop.call_arm`; d: none): rows valid
    for x are those below min(valid, changed's row) (valid: the rows the cache was exact on);
    each pass computes, for every example, the `window` rows from its first
    invalid row (rounded down to a multiple of 2**(S - 1)) at a per-example dynamic offset
    (`WindowBand`: gathered from and scattered into the padded caches, so shapes are static),
    until every example's needed row (that of the variable the call must make exact) is valid;
    given `check` (the noise and the forecasts the call checks, `update(..., check=...)`), it goes
    on while every example's checked forecasts in its last window held, so a call accepts as far
    as a full call would and fpi forecasts from fresher logits (fewer calls). The logits and h
    are exact on the rows before `valid_rows(cache)`; from there on the logits repeat the last
    exact row's (`_fill_stale`) and h keeps that of earlier inputs: a sampling loop may forecast
    from them but never accepts them (`tfps.sampling.loops.ArmLoop`).

    With the smallest window (2**(S - 1) rows) and ancestral sampling this is the cached
    ancestral sampler of fast PixelCNN++ generation [2] (`ancestral_cached`: one window per
    variable); with a larger one, every method's calls cost about window / H of a full call
    whatever the other examples of the batch do.
    """

    def __init__(self, model, window=None):
        if not supports_incremental(model):
            raise ValueError(f"{type(model).__name__} does not support incremental calls")
        self.model = model
        self.height = int(model.image_shape[0])
        self.alignment = row_alignment(model)
        self.row_size = row_size(model)
        self.window = int(window or self.alignment)
        if self.window < 1 or self.window % self.alignment:
            raise ValueError(f"window must be a multiple of {self.alignment}, got {self.window}")
        self.padded_height = self.window * math.ceil(self.height / self.window)
        self._map_specs = None  # (shape, dtype) of each cached map (`empty_cache`)

    def _padded(self, t):
        """A full map at scale k (`[B, ceil(H / 2**k), ...]`) in the padded layout."""
        scale = 1
        while -(-self.height // scale) != t.shape[1]:
            scale *= 2
        return _pad_rows(t, 1, self.padded_height // scale - t.shape[1])

    @staticmethod
    def valid_rows(cache):
        """int32 `[B]`: the rows on which the last call's logits and h are exact."""
        return cache[-1]

    def exact_positions(self, cache):
        """int32 `[B]`: the flat positions before which the last call's logits are exact."""
        return self.valid_rows(cache) * self.row_size

    def _outputs(self, cache):
        """The logits, with the rows from `valid_rows(cache)` on forecast (`_fill_stale`), and h."""
        logits = cache[-3][:, 1 : self.height + 1]
        return self._fill_stale(logits, self.valid_rows(cache)), cache[-2][:, 1 : self.height + 1]

    def _fill_stale(self, logits, valid):
        """The logits with each example's rows from `valid` on replaced by its last exact row's.

        Those rows were last computed on an older input; a sampling loop never accepts them, and
        fpi forecasts from them. The last exact row, repeated, forecasts them better than the
        older inputs' logits (fewer fpi calls on the digits models, docs/incremental.md). The
        argmax with each variable's own noise keeps a forecast per variable.
        """
        last = tf.gather(logits, tf.maximum(valid - 1, 0), axis=1, batch_dims=1)
        stale = (tf.range(self.height)[None, :] >= valid[:, None]) & (valid > 0)[:, None]
        stale = tf.reshape(stale, [-1, self.height] + [1] * (logits.shape.rank - 2))
        return tf.where(stale, last[:, None], logits)

    def _full_maps(self, x):
        """Every cached map of a full call on x, in the padded layout."""
        band = FullCall()
        logits, h = self.model(x, training=False, rows=band)
        return tuple(self._padded(t) for t in (*band.recorded, logits, h))

    def initial(self, x):
        """A full call, exact on every row (a sampling loop starts from `empty_cache` instead)."""
        cache = self._full_maps(x) + (tf.fill(tf.shape(x)[:1], self.height),)
        return (*self._outputs(cache), cache)

    def empty_cache(self, batch):
        """The cache of no call (every map zero, no row exact) for `batch` examples: the zero
        row above the image, which a window at row 0 reads, is a full call's zero padding."""
        if self._map_specs is None:
            with tf.init_scope():  # once, eagerly, even while a tf.function traces
                x = tf.zeros((1,) + tuple(self.model.image_shape), tf.int32)
                self._map_specs = [(t.shape[1:], t.dtype) for t in self._full_maps(x)]
        maps = tuple(tf.zeros([batch, *shape], dtype) for shape, dtype in self._map_specs)
        return maps + (tf.zeros([batch], tf.int32),)

    def _rows_of(self, t, starts):
        """The window's rows of a full-height `[B, H, ...]` tensor, `[B, window, ...]`."""
        t = _pad_rows(t, 0, self.padded_height - self.height)
        return tf.gather(t, starts[:, None] + tf.range(self.window)[None, :], axis=1, batch_dims=1)

    def _window(self, x, starts, maps):
        """One window per example at `starts`: the updated maps and the window's logits."""
        band = WindowBand(maps, starts, self.window)
        logits, h = self.model(self._rows_of(x, starts), training=False, rows=band)
        band.full(logits)
        band.full(h)
        return tuple(band.recorded), logits

    def _held(self, x, starts, logits, check):
        """bool `[B]`: every checked forecast in each example's window equals its output."""
        noise, checked = check
        output = tf.argmax(
            tf.cast(logits, tf.float32) + self._rows_of(noise, starts), -1, output_type=tf.int32
        )
        wrong = self._rows_of(checked, starts) & tf.not_equal(output, self._rows_of(x, starts))
        return ~tf.reduce_any(tf.reshape(wrong, [tf.shape(wrong)[0], -1]), axis=1)

    def update(self, x, changed, needed, cache, check=None):
        maps, valid = cache[:-1], tf.minimum(cache[-1], changed // self.row_size)
        needed = tf.where(needed < self.row_size * self.height, needed // self.row_size, -1)
        last_start = self.padded_height - self.window
        batch = tf.shape(valid)[0]

        def more(maps, valid, held):
            # Go on while an example needs a row, or while every example's last window held
            # (`check`): the call then accepts past this window, as a full call would.
            return tf.reduce_any(needed >= valid) | (
                tf.reduce_all(held) & tf.reduce_any(valid < self.height)
            )

        def body(maps, valid, held):
            starts = tf.minimum(valid // self.alignment * self.alignment, last_start)
            maps, logits = self._window(x, starts, maps)
            if check is not None:
                held = self._held(x, starts, logits, check)
            return maps, tf.minimum(tf.maximum(valid, starts + self.window), self.height), held

        maps, valid, _ = tf.while_loop(
            more,
            body,
            (maps, valid, tf.zeros([batch], tf.bool)),
            maximum_iterations=self.padded_height // self.alignment,
        )
        cache = tuple(maps) + (valid,)
        return (*self._outputs(cache), cache)
