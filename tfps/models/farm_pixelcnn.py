"""FARM + PixelCNN: one Gated PixelCNN [2] in the 8 raster orderings of an image, shared kernels.

The 8 raster variants of an H x W image (`tfps.models.orderings.RASTER_VARIANTS`: start corner x
rows or columns first [1, sec. 3]) are the 8 symmetries of the square: each is the natural raster
order of a flipped and/or transposed image. With T_k that transform (a permutation of the pixels,
`T_k(x)` in raster order is x in ordering k),

    logits_k(x) = T_k^{-1}( PixelCNN(T_k(x); e_k) )

is autoregressive in ordering k whenever the raster PixelCNN is autoregressive in raster order:
every kernel is shared by the k orderings, and `e_k` (`ordering_embedding[k]`, F numbers, learned)
is added to both stacks after the input layer, the same at every pixel, so the network knows
which way it reads the image without breaking the order. `model(x, ordering_index=k)` takes k as a
Python int or an int32 tensor (the `mc` objective draws it per batch): the transform is a gather
of the pixels with the k-th permutation.

Why the dihedral transforms and not LMConv's per-location masks [3]: the transforms reuse the
Gated PixelCNN of `tfps.models.gated_pixelcnn` unchanged (its shifted convolutions, its exactness
and its tests), cost one gather per call, and cover exactly FARM's 8 raster variants. Per-location
masks reach any ordering but need an im2col convolution with a mask per pixel, a rewrite of every
layer that costs k times the memory on a CPU. FARM itself trained two separate PixelCNN++s [1,
sec. 4]. What the transforms cannot do: an ordering that is not a raster variant (a random
permutation: use arch `farm_made`), and a column-first variant of a non-square image (the
transpose changes its shape); both are refused when the model is built. The kernels see the image
flipped or turned in the other orderings, the embedding tells them which.

Sampling, objectives, inpainting and serving take the family as they take
`tfps.models.farm_made.OrderedMADE` (`tfps.models.family`): sample ordering k through its ordered
view `tfps.sampling.ordered_view.in_ordering(model, k)`, exact with every method.
`tfps.sampling.farm_parallel.diagonal_sample` is FARM's diagonal schedule for this family (its
exact skew from `pixel_dependencies`).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Aaron van den Oord et al. Conditional Image Generation with PixelCNN Decoders. In NeurIPS,
     2016.

[3]: Ajay Jain, Pieter Abbeel, Deepak Pathak. Locally Masked Convolution for Autoregressive
     Models. In UAI, 2020.
"""

import keras
import numpy as np
import tensorflow as tf

from tfps.models import arm_base, family, gated_pixelcnn
from tfps.models import layers as tfps_layers

ARCH = "farm_pixelcnn"
RUN_CONFIG_FIELDS = {**gated_pixelcnn.RUN_CONFIG_FIELDS, "orderings": "orderings"}


def pixel_permutations(orderings, event_shape):
    """`[k, H W]` int32: row k is the pixel permutation T_k of `orderings[k]` (pixel `T_k[t]` is
    read t-th). ValueError for an ordering that is not one of the 8 raster variants, or a
    column-first variant of an image that is not square."""
    height, width, channels = event_shape
    rows = []
    for ordering in orderings:
        variant = ordering.raster_variant(event_shape)
        if variant is None:
            raise ValueError(
                f"the PixelCNN family reads the image in its 8 raster variants (flips and "
                f"transposes); {ordering!r} is none of them: a random permutation needs arch "
                f"'farm_made'"
            )
        if variant.endswith("_cols") and height != width:
            raise ValueError(
                f"raster variant {variant!r} transposes the image, which needs a square image; "
                f"got {height}x{width}: use row-first variants (*_rows) only"
            )
        rows.append(ordering.pixel_order(channels))
    return np.stack(rows).astype(np.int32)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class OrderedPixelCNN(family.OrderingFamily, gated_pixelcnn.GatedPixelCNN):
    """A categorical Gated PixelCNN in k raster orderings sharing all kernels (see the module).

        logits, h = model(x, ordering_index=k)   logits `[B, H, W, C, K]` of x_j from the x
                                                 generated before j in orderings[k]; h
                                                 `[B, H, W, filters]` in x layout

    Args:
      event_shape: `(H, W, C)`; square if a column-first variant is among the orderings.
      num_categories: K >= 2.
      orderings: the k orderings, raster variants (`tfps.models.family.orderings_of`; `"raster8"`
        for all 8); default the natural order.
      filters, num_layers, kernel_size, dropout_rate, head_hidden: as
        `tfps.models.gated_pixelcnn.GatedPixelCNN`.

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
        filters=64,
        num_layers=5,
        kernel_size=3,
        dropout_rate=0.0,
        head_hidden=None,
        **kwargs,
    ):
        shape = arm_base.check_event_shape(event_shape, self.RANKS)
        # Before GatedPixelCNN.__init__, whose build_weights calls the model (not Keras-tracked).
        self.orderings = family.orderings_of(orderings, shape)
        self._pixel_orders = pixel_permutations(self.orderings, shape)
        super().__init__(
            event_shape,
            num_categories,
            filters=filters,
            num_layers=num_layers,
            kernel_size=kernel_size,
            dropout_rate=dropout_rate,
            head_hidden=head_hidden,
            **kwargs,
        )

    def build_weights(self):
        self.ordering_embedding = self.add_weight(
            shape=(self.num_orderings, self.filters),
            initializer="zeros",
            name="ordering_embedding",
        )
        super().build_weights()

    def call(self, x, training=False, ordering_index=0):
        ordering_index = self.check_ordering_index(ordering_index)
        x_onehot = self.one_hot(x)  # [B, H, W, C, K]
        order = tf.gather(tf.constant(self._pixel_orders), ordering_index)
        logits, h = self.stacks(
            self._pixels(x_onehot, order),
            training=training,
            bias=tf.gather(self.ordering_embedding, ordering_index),
        )
        back = tf.math.invert_permutation(order)
        return self._pixels(logits, back), self._pixels(h, back)

    def pixel_dependencies(self, ordering_index=0):
        """bool `[P, P]` over the P = H W pixels of x (raster indices): `[t, s]` True where the
        structure lets the logits at pixel t in ordering `ordering_index` depend on pixel s (a
        superset of what any weights realise). Read in the ordering's pixel order as an H x W
        image, the receptive field is every pixel of the rows above up to `right_reach()` columns
        to the right, and the pixels to the left in its own row (what
        `tfps.sampling.farm_parallel.required_skew` reads)."""
        index = self.check_ordering_index(ordering_index)
        height, width, _ = self.event_shape
        pixels, reach = height * width, int(self.right_reach())
        row, col = np.divmod(np.arange(pixels), width)  # network positions, H x W raster
        above = (row[None, :] < row[:, None]) & (col[None, :] <= col[:, None] + reach)
        left = (row[None, :] == row[:, None]) & (col[None, :] < col[:, None])
        order = self._pixel_orders[index]
        dependencies = np.zeros((pixels, pixels), bool)
        dependencies[np.ix_(order, order)] = above | left
        return dependencies

    def _pixels(self, t, order):
        """t `[B, H, W, ...]` with its pixels read in `order` (`[H W]`), shape kept."""
        shape = tf.shape(t)
        flat = tf.reshape(t, tf.concat([shape[:1], [-1], shape[3:]], axis=0))
        return tf.reshape(tf.gather(flat, order, axis=1), shape)

    def options(self):
        return {**super().options(), **self.family_options()}
