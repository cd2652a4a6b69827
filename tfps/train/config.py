"""Typed, validated run configurations, and their nested form for presets and `--config` flags.

A run is described by a flat dataclass, written to `config.json` as the `train` section:
`TrainConfig` for the ARM, `AutoencoderConfig` for the discrete autoencoder [1, sec. 4.2]. The
fields they share (data, optimisation, schedule) are declared once, in `RunConfig`. Every field
says which section of the nested preset it belongs to, so a preset (`configs/*.py`, an
`ml_collections.ConfigDict` as in flax and vdm) reads

    config.data.dataset, config.model.filters, config.forecast.steps,
    config.optimizer.learning_rate, config.training.batch_size, ...

and `from_config_dict` turns it back into the typed dataclass, `validate()` checking every value
before anything is written. Defaults follow [1, Table 4] (Default column); the paper's other
settings are the presets in `configs/`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.

[2]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.

[3]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import dataclasses
import typing

from tfps.data import builtin as tfps_data
from tfps.data import sources
from tfps.distribute import strategies
from tfps.models import arms, autoencoder
from tfps.train import config_checks

ARM, AUTOENCODER = "arm", "autoencoder"
DOWNSAMPLING = autoencoder.DOWNSAMPLING  # the autoencoder's two stride-2 convolutions
EVENTS = {1: "sequences (L,)", 2: "sequences of vectors (L, C)", 3: "images (H, W, C)"}


def _field(default, help_text, section, key=None):
    """A config field in `section` of the nested form, named `key` there (default: its name)."""
    return dataclasses.field(
        default=default, metadata={"help": help_text, "section": section, "key": key}
    )


@dataclasses.dataclass
class RunConfig(strategies.DistributeConfig):
    """The fields every run has: its devices (`tfps.distribute.strategies`), data, optimisation,
    schedule.

    Weight decay is PyTorch-Adam style, as in the paper's PyTorch code: `weight_decay * w` is
    added to the gradient of every trainable weight (biases included) before the Adam moments,
    i.e. an L2 penalty inside Adam, not decoupled AdamW decay.
    """

    dataset: str = _field(
        tfps_data.DEFAULT_DATASET,
        "Dataset name (see tfps.data.builtin.DATASETS), or your own data (tfps.data.sources): "
        "tfds:NAME, a path to an .npz file, or a folder of PNG/JPEG images.",
        "data",
    )
    bits: int | None = _field(
        None,
        "Bit depth to quantise the data to (None: the dataset's own). Your own data: K = "
        "2**bits, values must be below it (None: the smallest depth holding the largest "
        "training value).",
        "data",
    )
    data_dir: str | None = _field(
        None, "Directory for downloaded datasets (None: default).", "data"
    )
    num_categories: int | None = _field(
        None, "Your own data: K categories, values 0..K-1 (e.g. 17 levels); else use bits.", "data"
    )
    binarize: int | None = _field(
        None,
        "Your own data: threshold T turning 8-bit grey levels x into {0, 1} by x >= T (binary "
        "MNIST style, K = 2); None: off.",
        "data",
    )
    image_key: str = _field("image", "tfds:NAME data: the feature holding the images.", "data")
    validation_size: int | None = _field(
        None,
        "Your own data without a validation (or test) split: examples carved from train for it "
        "(None: 10% of train, at least 1, at most 5000).",
        "data",
    )
    batch_size: int = _field(64, "Training batch size (paper: 64).", "training")
    steps: int = _field(
        200000, "Total optimisation steps, counted across resumes (paper: 200000).", "training"
    )
    learning_rate: float = _field(2e-4, "Initial Adam learning rate (paper: 2e-4).", "optimizer")
    lr_decay: float = _field(
        0.999995,
        "Learning rate decay factor applied every step (exponential; paper: 0.999995).",
        "optimizer",
    )
    weight_decay: float = _field(
        1e-6,
        "PyTorch-Adam style L2 weight decay added to the gradients (paper: 1e-6).",
        "optimizer",
    )
    seed: int = _field(0, "Seed for weight initialisation, dropout and data shuffling.", "training")
    checkpoint_every: int = _field(
        1000, "Save a checkpoint every this many steps (and at the end).", "training"
    )
    eval_every: int = _field(1000, "Evaluate on validation data every this many steps.", "training")
    log_every: int = _field(
        100, "Log the training loss, steps/s and ETA every this many steps.", "training"
    )
    keep_checkpoints: int = _field(3, "Number of most recent checkpoints to keep.", "training")
    eval_batches: int | None = _field(
        50,
        "Batches of the validation split used for validation (None: the whole split).",
        "training",
    )

    KIND: typing.ClassVar[str] = ""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict, ignoring keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def validate(self):
        """Raises ValueError naming the first invalid field. Returns self."""
        for field in dataclasses.fields(self):
            config_checks.check_field(field.name, getattr(self, field.name))
        if not sources.is_user_source(self.dataset):
            for name in ("num_categories", "binarize"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name} is for your own data (tfds:NAME, .npz, a folder); dataset "
                        f"{self.dataset!r} has its own categories (use bits)"
                    )
            tfps_data.dataset_info(self.dataset, self.bits)  # ValueError: unknown name / bits.
            return self
        sources.check_categories(self)  # bits, num_categories and binarize together
        return self

    def user_data(self):
        """Whether `dataset` names the user's own data (`tfps.data.sources`), not a built-in set."""
        return sources.is_user_source(self.dataset)


@dataclasses.dataclass
class TrainConfig(RunConfig):
    """Everything that defines an ARM training run [1, sec. 4.1, Table 4].

    Defaults follow Table 4 (Default column); binary MNIST used 2 resnets of 60 filters.
    """

    latents_from: str | None = _field(
        None,
        "Autoencoder run directory or checkpoint prefix (launch/train_autoencoder.py): train the "
        "ARM on its frozen encoder's latents of the autoencoder's dataset (tfps.train.latents).",
        "data",
    )
    arch: str = _field(
        arms.DEFAULT_ARCH,
        "Model architecture, a name of tfps.models.arms.ARCHITECTURES (pixelcnn: the paper's; your "
        "own: tfps.models.arms.register).",
        "model",
    )
    num_resnets: int = _field(
        5, "Gated resnets per PixelCNN stream (paper: 5; binary MNIST: 2).", "model"
    )
    filters: int = _field(
        162, "Filters per layer, the width of any arch (paper: 162; binary MNIST: 60).", "model"
    )
    num_layers: int = _field(2, "Layers (blocks) of the non-PixelCNN architectures.", "model")
    num_heads: int = _field(4, "Attention heads (transformer arch).", "model")
    kernel_size: int = _field(
        3, "Convolution kernel size (gated_pixelcnn and conv1d archs).", "model"
    )
    num_scales: int = _field(
        1, "Resolutions of the PixelCNN++ hierarchy (paper: 3; 1: one scale).", "model"
    )
    dropout_rate: float = _field(
        0.5, "Dropout rate inside the gated resnets (paper: 0.5).", "model"
    )
    head_hidden: int | None = _field(
        None, "Hidden units per channel of the channel head (None: filters).", "model"
    )
    forecast_steps: int = _field(
        0,
        "Learned forecasting modules T trained with the ARM [1, sec. 2.4] (Table 4: 20 for "
        "binary MNIST, 1 or 5 otherwise); 0: none.",
        "forecast",
        "steps",
    )
    forecast_shared: bool = _field(
        True,
        "Forecasting heads on the ARM's representation h; false: the ablation without "
        "representation sharing [1, Table 3] (heads on x and noise, method learned_unshared).",
        "forecast",
        "shared",
    )
    forecast_filters: int | None = _field(
        None,
        "Width of the forecasting heads (Table 4: as the ARM; None: filters).",
        "forecast",
        "filters",
    )
    forecast_weight: float = _field(
        0.01,
        "Weight of the forecasting KL [1, eq. 9] in the loss (Table 4: 0.01).",
        "forecast",
        "weight",
    )
    orderings: str | None = _field(
        None,
        "farm_made, farm_pixelcnn: its k orderings, comma-separated raster variants (tl_rows, "
        "..., br_cols; tfps.models.orderings) or raster8 for all 8 [3]; None: the natural order.",
        "model",
    )
    ordering_objective: str = _field(
        "mc",
        "A model of k orderings: mc, ensemble, ensemble_kl or mixture "
        "(tfps.train.ordering_objectives) [3].",
        "training",
    )

    KIND: typing.ClassVar[str] = ARM

    def validate(self):
        """Raises ValueError naming the first invalid field. Returns self."""
        super().validate()
        arms.check_arch(self.arch)
        if self.user_data():
            return self  # checked against the data when it is read (tfps.data.open)
        return self.check_fits(tfps_data.dataset_info(self.dataset, self.bits))

    def model_fields(self):
        """`{name: value}` of the `model` section: what an architecture's factory is given."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if _path(f)[0] == "model"
        }

    def check_fits(self, info):
        """Raises ValueError unless the model fits the variables it models (`info`, a
        `DatasetInfo`: the dataset's images or sequences, or an autoencoder's latents): the arch
        models events of that rank (`tfps.models.arms.event_ranks`; a PixelCNN models images only),
        a PixelCNN's `num_scales` halvings leave at least one pixel, and `forecast_steps` is below
        d. Returns self."""
        config_checks.check_arm_fits(self, info, EVENTS)
        return self


@dataclasses.dataclass
class AutoencoderConfig(RunConfig):
    """Everything that defines a discrete-autoencoder run [1, sec. 4.2, Appendix A.3].

    Defaults are the paper's (width 512, a 4 x 8 x 8 latent with 128 categories, 50000
    iterations; optimisation as Table 4), except the dataset: the embedded `digits32`.
    `quantization="channel"` is anytime sampling's code [2] (`tfps.models.ordered_code`).
    """

    dataset: str = _field(
        "digits32",
        "Dataset name (paper: cifar10, svhn_cropped, imagenet_resized/32x32); H and W "
        "divisible by 4.",
        "data",
    )
    steps: int = _field(
        50000, "Total optimisation steps, counted across resumes (paper: 50000).", "training"
    )
    width: int = _field(
        512,
        "Width F of the encoder and decoder (paper: 512); half-width layers have F / 2.",
        "model",
    )
    latent_channels: int = _field(4, "Latent channels c (paper: 4); channel: code length.", "model")
    latent_categories: int = _field(
        128, "Categories K (paper: 128); channel: codebook size.", "model"
    )
    quantization: str = _field(
        "spatial", "spatial (the paper's code), or channel: one code per channel map [2].", "model"
    )
    ordered: bool = _field(False, "quantization=channel: train the ordered code [2].", "model")
    commitment: float = _field(0.25, "quantization=channel: VQ commitment weight.", "model")
    ordered_from_step: int = _field(
        0,
        "ordered: the step from which prefixes are random; before it the full code trains "
        "([2]'s pretraining, then fine-tuning ordered, in one run).",
        "training",
    )

    KIND: typing.ClassVar[str] = AUTOENCODER

    def validate(self):
        """Raises ValueError naming the first invalid field. Returns self."""
        super().validate()
        config_checks.check_quantization(self.quantization, self.ordered)
        config_checks.check_ordered_schedule(self.ordered, self.ordered_from_step, self.steps)
        if not self.user_data():  # your own data is checked when it is read
            self.check_fits(tfps_data.dataset_info(self.dataset, self.bits))
        return self

    def check_fits(self, info):
        """Raises ValueError unless `info` (a `DatasetInfo`) holds images with a height and
        width divisible by the downsampling. Returns self."""
        config_checks.check_autoencoder_data(self.dataset, info, EVENTS[3])
        return self


# ----------------------------------------------------------------------------- nested form

CONFIG_CLASSES = {ARM: TrainConfig, AUTOENCODER: AutoencoderConfig}


def _path(field):
    return field.metadata["section"], field.metadata["key"] or field.name


def _base_type(field):
    """`int` for `int | None`, else the field's type."""
    return next((t for t in typing.get_args(field.type) if t is not type(None)), field.type)


def to_config_dict(config):
    """The nested `ml_collections.ConfigDict` of a typed config (what presets return).

    `kind` names the run type ("arm" or "autoencoder"); fields that may be None are typed
    placeholders, so `--config.data.bits=5` parses as an int.
    """
    import ml_collections  # only the launchers and presets need it

    nested = ml_collections.ConfigDict()
    nested.kind = config.KIND
    for field in dataclasses.fields(config):
        section, key = _path(field)
        if section not in nested:
            nested[section] = ml_collections.ConfigDict()
        value = getattr(config, field.name)
        if value is None:
            value = ml_collections.config_dict.placeholder(_base_type(field))
        nested[section][key] = value
    return nested


def default_config(kind=ARM):
    """The default nested config of a run kind: every field at its dataclass default."""
    return to_config_dict(CONFIG_CLASSES[kind]())


def from_config_dict(nested, kind=None):
    """The typed, validated config of a nested one (a preset with its overrides).

    `kind`: the run kind the caller expects; a preset of another kind is refused. Raises
    ValueError naming an unknown section or field, or the first invalid value.
    """
    if not hasattr(nested, "to_dict") and not isinstance(nested, dict):
        raise ValueError(f"a config is an ml_collections.ConfigDict, got {type(nested).__name__}")
    values = nested.to_dict() if hasattr(nested, "to_dict") else dict(nested)
    found = values.pop("kind", None)
    if found not in CONFIG_CLASSES:
        raise ValueError(f"config kind must be one of {sorted(CONFIG_CLASSES)}, got {found!r}")
    if kind is not None and found != kind:
        raise ValueError(f"this is a config of kind {found!r}, but one of kind {kind!r} is needed")
    cls = CONFIG_CLASSES[found]
    by_path = {_path(f): f.name for f in dataclasses.fields(cls)}
    flat = {}
    for section, entries in values.items():
        if not isinstance(entries, dict):
            raise ValueError(f"config.{section} is not a section of {found} configs")
        for key, value in entries.items():
            if (section, key) not in by_path:
                raise ValueError(f"config.{section}.{key} is not a field of {found} configs")
            flat[by_path[section, key]] = value
    return cls(**flat).validate()


def field_help(kind=ARM, values=None):
    """One line per field, `--config.<section>.<key> (type, value): help`, for `--helpfull`.

    `values`: a nested config whose values to show (default: the kind's defaults).
    """
    cls = CONFIG_CLASSES[kind]
    lines = []
    for field in dataclasses.fields(cls):
        section, key = _path(field)
        value = getattr(cls(), field.name)
        if values is not None and section in values and key in values[section]:
            value = values[section][key]
        lines.append(
            f"--config.{section}.{key} ({_base_type(field).__name__}, {value!r}): "
            f"{field.metadata['help']}"
        )
    return "\n".join(lines)
