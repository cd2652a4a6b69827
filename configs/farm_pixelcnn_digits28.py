"""FARM + PixelCNN [1, sec. 4]: one Gated PixelCNN read in 2 raster orderings, binary 28x28 digits.

FARM trained two PixelCNN++s (raster and turned) on CIFAR10 [1, sec. 4]; here one Gated PixelCNN
[2] shares every kernel between its orderings (`tfps.models.farm_pixelcnn.OrderedPixelCNN`: the
image flipped or transposed, an ordering embedding), on the embedded `digits28_binary_centred`
(MNIST's layout) so that its inpainting table sits beside FARM + MADE's
(`configs/farm_made_digits28.py`). Orderings: raster and reverse raster (`tl_rows,br_rows`: the
reverse one has all the evidence of a top-left occlusion); all 8:
`--config.model.orderings=raster8`; one: `tl_rows`. Objective: FARM's evidence-weighted ensemble
+ KL [1, eq. 5] (`--config.training.ordering_objective=mc|ensemble|ensemble_kl|mixture`).
Sample it with `python -m launch.farm_sampling` (ancestral, predictive sampling, FARM's parallel
sampling and the diagonal schedule), inpaint with `python -m launch.inpaint`.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.

[2]: Aaron van den Oord et al. Conditional Image Generation with PixelCNN Decoders. In NeurIPS,
     2016.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits28_binary_centred"
    config.model.arch = "farm_pixelcnn"
    config.model.orderings = "tl_rows,br_rows"
    config.model.filters = 32
    config.model.num_layers = 5
    config.model.kernel_size = 3
    config.model.dropout_rate = 0.0
    config.training.ordering_objective = "ensemble_kl"
    config.optimizer.learning_rate = 1e-3
    config.training.steps = 1500
    config.training.batch_size = 32
    return config
