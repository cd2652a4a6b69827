"""The checks of the config fields (`tfps.train.config`): each field's valid range, as one table,
and the checks of a model against its data.

`check_field(name, value)` raises ValueError naming the field and what it must be;
`check_arm_fits` and `check_autoencoder_data` check a run's model against the data it models
(event rank, scales, forecast steps, orderings). The checks of bits and the architecture name are
in `tfps.train.config`'s `validate` methods.
"""

import numpy as np

from tfps.data import builtin as tfps_data
from tfps.data import sources
from tfps.distribute import strategies
from tfps.models import arms, autoencoder, family, farm_pixelcnn, ordered_code, pixelcnn
from tfps.train import ordering_objectives

AT_LEAST_ONE = (
    "filters", "batch_size", "steps", "checkpoint_every", "eval_every", "log_every",
    "keep_checkpoints", "latent_channels", "num_layers", "num_heads", "kernel_size",
)  # fmt: skip
RANGES = {  # name: (predicate, what the value must be)
    "num_resnets": (lambda v: v >= 0, ">= 0"),
    "num_scales": (lambda v: v >= 1, ">= 1"),
    **{name: (lambda v: v >= 1, ">= 1") for name in AT_LEAST_ONE},
    "head_hidden": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "forecast_steps": (lambda v: v >= 0, ">= 0"),
    "forecast_filters": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "forecast_weight": (lambda v: v >= 0.0, ">= 0"),
    "eval_batches": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "dropout_rate": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "learning_rate": (lambda v: v > 0.0, "> 0"),
    "lr_decay": (lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
    "weight_decay": (lambda v: v >= 0.0, ">= 0"),
    "width": (lambda v: v >= 2 and v % 2 == 0, "an even number >= 2"),
    "latent_categories": (lambda v: v >= 2, ">= 2"),
    "dataset": (
        lambda v: v in tfps_data.DATASETS or sources.is_user_source(v),
        "one of " + ", ".join(repr(d) for d in tfps_data.DATASETS) + ", or your own data: "
        "'tfds:NAME', a path to an .npz file or an existing folder of images",
    ),
    "num_categories": (lambda v: v is None or v >= 2, ">= 2 (or None)"),
    "binarize": (lambda v: v is None or 1 <= v <= 255, "in 1..255 (or None)"),
    "validation_size": (lambda v: v is None or v >= 1, ">= 1 (or None)"),
    "image_key": (lambda v: isinstance(v, str) and v != "", "a feature name"),
    "quantization": (
        lambda v: v in ordered_code.QUANTIZATIONS,
        "one of " + ", ".join(repr(q) for q in ordered_code.QUANTIZATIONS),
    ),
    "ordered": (lambda v: isinstance(v, bool), "true or false"),
    "commitment": (lambda v: v >= 0.0, ">= 0"),
    "ordering_objective": (
        lambda v: v in ordering_objectives.OBJECTIVES,
        "one of " + ", ".join(repr(o) for o in ordering_objectives.OBJECTIVES),
    ),
    **strategies.RANGES,
}


def check_field(name, value):
    """Raises ValueError if `value` is not valid for the config field `name` on its own.

    (Whether `bits` suits the dataset is checked by `validate`.)
    """
    if name in RANGES:
        predicate, requirement = RANGES[name]
        if not predicate(value):
            raise ValueError(f"{name} must be {requirement}, got {value!r}")


def check_quantization(quantization, ordered):
    """Raises ValueError if an ordered code is asked of a quantisation that has no order."""
    if ordered and quantization != ordered_code.CHANNEL:
        raise ValueError(
            f"ordered=True needs quantization={ordered_code.CHANNEL!r} (a code of whole channel "
            f"maps whose prefixes decode), got quantization={quantization!r}"
        )


def check_ordered_schedule(ordered, ordered_from_step, steps):
    """Raises ValueError unless `ordered_from_step` is a step in 0..steps - 1 of an ordered code
    (0 for an unordered one)."""
    if ordered_from_step and not ordered:
        raise ValueError(
            f"ordered_from_step={ordered_from_step} needs ordered=True (it is when the ordered "
            f"training starts)"
        )
    if not 0 <= ordered_from_step < max(steps, 1):
        raise ValueError(f"ordered_from_step must be in 0..{steps - 1}, got {ordered_from_step}")


def check_autoencoder_data(dataset, info, events):
    """Raises ValueError unless `info` (the `DatasetInfo` of `dataset`) holds images (`events`
    describes them) with a height and width divisible by the autoencoder's downsampling."""
    if len(info.image_shape) != 3:
        raise ValueError(
            f"the autoencoder models {events}, but {dataset!r} has events of shape "
            f"{tuple(info.image_shape)}"
        )
    down = autoencoder.DOWNSAMPLING
    if info.image_shape[0] % down or info.image_shape[1] % down:
        raise ValueError(
            f"dataset {dataset!r} has images {info.image_shape}; the autoencoder "
            f"needs height and width divisible by {down}"
        )


def check_arm_fits(config, info, events):
    """Raises ValueError unless the ARM of `config` (a `TrainConfig`) fits the variables it
    models (`info`, a `DatasetInfo`: the dataset's images or sequences, or an autoencoder's
    latents): the arch models events of that rank (`tfps.models.arms.event_ranks`; a PixelCNN
    models images only; `events` names each rank), a PixelCNN's `num_scales` halvings leave at
    least one pixel, `forecast_steps` is below d, and `orderings` (a family's arch only) are
    orderings of the event (a PixelCNN family's: raster variants)."""
    shape, what = info.image_shape, info.name.replace(":latents", "'s latents")
    ranks = arms.event_ranks(config.arch)
    if ranks is not None and len(shape) not in ranks:
        fitting = [a for a in arms.ARCHITECTURES if len(shape) in (arms.event_ranks(a) or ())]
        raise ValueError(
            f"arch {config.arch!r} models {' or '.join(events[r] for r in ranks)}, but {what} "
            f"has events of shape {tuple(shape)}; choose another model arch: "
            f"{', '.join(map(repr, fitting))}"
        )
    most = pixelcnn.max_num_scales(shape) if len(shape) == 3 else 1
    if config.arch == arms.DEFAULT_ARCH and config.num_scales > most:
        raise ValueError(
            f"num_scales={config.num_scales} is too many for {what}: "
            f"{shape[0]}x{shape[1]} allows at most {most}, each scale halves it"
        )
    d = int(np.prod(shape))
    if config.forecast_steps >= d:
        raise ValueError(
            f"forecast_steps must be below d = {d} for {what}, got {config.forecast_steps}"
        )
    if config.orderings is not None:
        if config.arch not in arms.FAMILIES:
            raise ValueError(
                f"orderings is for the archs of a family of orderings "
                f"({', '.join(map(repr, arms.FAMILIES))}), not {config.arch!r}"
            )
        ordering_family = family.orderings_of(config.orderings, shape)  # ValueError naming one
        if config.arch == farm_pixelcnn.ARCH:
            farm_pixelcnn.pixel_permutations(ordering_family, shape)  # raster variants only
        one_natural = len(ordering_family) == 1 and ordering_family[0].is_natural()
        if config.forecast_steps and not one_natural:
            raise ValueError(
                "forecast_steps needs one ordering, the natural one: learned forecasting heads "
                "read the representation of one ARM and forecast in raster order, and "
                f"{config.orderings!r} names {len(ordering_family)} ({ordering_family[0].name})"
            )
