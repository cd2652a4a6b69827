"""The ARM protocol: what any autoregressive model must be for tfps, and the architectures.

An ARM [1, eq. 1] is a `keras.Model` with

  * `event_shape`: the shape of one example, a tuple of ints: images `(H, W, C)`, sequences
    `(L,)` or `(L, C)`;
  * `num_categories`: K >= 2, every variable takes a value in [0, K);
  * `num_variables`: d = prod(event_shape);
  * `representation_channels`: F if the model returns a representation h for learned
    forecasting [1, sec. 2.2], else None;
  * `call(x, training=False) -> (logits, h)`: x int `[B, *event_shape]` -> logits float32
    `[B, *event_shape, K]`, and h float32 `[B, *spatial, F]` (spatial = `(H, W)` for images,
    `(L,)` for sequences) or None;
  * `model_config()`: JSON-able constructor arguments including `"arch"` (its name in
    `ARCHITECTURES`), so `build_model(model.model_config())` rebuilds it.

Optionally, `cached_ancestral_arm()` returns an ARM that caches what earlier calls computed, for
the sampling method `ancestral_cached` (`tfps.sampling.incremental.cached_ancestral_arm`; the
Transformer's key/value caches, `tfps.sampling.kv_cache`); a PixelCNN gets one from
`tfps.sampling.incremental`.

Order: raster order of the flattened event (row-major over all axes, channel last), the order of
`tfps.models.pixelcnn.PixelCNN`: the logits at flat position i depend only on x at positions < i.
`tfps.check_autoregressive` (`tfps.models.causality`) tests that property by perturbation.

The engine (sampler, forecasters, heads, serving) works on one canonical layout, images
`[B, H, W, C]`: `(H, W, C)` stays, a sequence `(L,)` is `(1, L, 1)` and `(L, C)` is `(1, L, C)`,
which keeps the raster order. `canonical_arm` wraps a protocol model as the canonical
`x -> (logits, h)` callable of `tfps.sampling.predictive.PredictiveSampler` (a `[B, 1, 1, 1]`
placeholder h when the model has none); `sampling.sampler_for_model` returns results in the event
shape.

Architectures: `ARCHITECTURES` maps a name to a factory `model_config dict -> model`. The dict is
either a model's own `model_config()` or, when `tfps.train.training` builds a new model,
`event_shape`, `num_categories` and every field of the config's `model` section
(`tfps.train.config`); a factory ignores the keys it does not use (`from_constructor` does that for
a class). A factory may state the event ranks it models as its attribute `ranks` (`(3,)`: images
only; `event_ranks`), so a run on data of another rank is refused before anything is written.
`register` adds your own architecture; a config without `arch` (runs from before the registry) is a
PixelCNN. The launchers find your architecture when the environment variable `TFPS_ARM_MODULES`
names the modules (comma-separated, importable) that register it.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import importlib
import inspect
import os

from tfps.models import (
    arm_base,
    conv1d_arm,
    farm_made,
    farm_pixelcnn,
    gated_pixelcnn,
    made,
    pixelcnn,
    transformer,
)
from tfps.sampling import protocol

DEFAULT_ARCH = "pixelcnn"
MODULES_VARIABLE = "TFPS_ARM_MODULES"


def from_constructor(cls):
    """A factory `model_config -> cls(**the keys its constructor takes)`."""
    names = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}

    def factory(model_config):
        return cls(**{k: v for k, v in model_config.items() if k in names})

    factory.__name__ = f"build_{cls.__name__}"
    return factory


def _pixelcnn(model_config):
    values = dict(model_config)
    shape = values.pop("event_shape", None)
    values.setdefault("image_shape", shape)
    if len(values["image_shape"] or ()) != 3:
        raise ValueError(
            f"arch 'pixelcnn' models images (H, W, C), got event shape {values['image_shape']}; "
            f"for sequences choose another arch of {sorted(ARCHITECTURES)}"
        )
    return from_constructor(pixelcnn.PixelCNN)(pixelcnn.full_model_config(values))


_pixelcnn.ranks = (3,)


def from_family(cls, run_config_fields):
    """A factory for a tfps ARM family: its own `model_config()` keys win, and a run config's
    generic model fields fill the options they stand for (`run_config_fields`, `{option:
    field}`, e.g. MADE's `hidden_units` from `filters`)."""
    build = from_constructor(cls)

    def factory(model_config):
        values = {
            **arm_base.options_from_run_config(model_config, run_config_fields),
            **model_config,
        }
        values["event_shape"] = tuple(values["event_shape"])
        return build(values)

    factory.__name__ = f"build_{cls.__name__}"
    factory.ranks = cls.RANKS
    return factory


ARCHITECTURES = {
    DEFAULT_ARCH: _pixelcnn,
    made.ARCH: from_family(made.MADE, made.RUN_CONFIG_FIELDS),
    gated_pixelcnn.ARCH: from_family(
        gated_pixelcnn.GatedPixelCNN, gated_pixelcnn.RUN_CONFIG_FIELDS
    ),
    conv1d_arm.ARCH: from_family(conv1d_arm.CausalConv1DARM, conv1d_arm.RUN_CONFIG_FIELDS),
    transformer.ARCH: from_family(transformer.Transformer, transformer.RUN_CONFIG_FIELDS),
    farm_made.ARCH: from_family(farm_made.OrderedMADE, farm_made.RUN_CONFIG_FIELDS),
    farm_pixelcnn.ARCH: from_family(farm_pixelcnn.OrderedPixelCNN, farm_pixelcnn.RUN_CONFIG_FIELDS),
}
# The architectures that model a family of orderings (`tfps.models.family`; config `orderings`).
FAMILIES = (farm_made.ARCH, farm_pixelcnn.ARCH)


def register(name, factory, overwrite=False):
    """Adds architecture `name`: `factory(model_config dict) -> model` (see the module docstring).

    Register before training or loading a run of that architecture (`--config.model.arch=name`);
    an export needs no registration. Re-registering a name needs `overwrite=True`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an architecture name is a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"the factory of {name!r} must be callable, got {factory!r}")
    if name in ARCHITECTURES and not overwrite and ARCHITECTURES[name] is not factory:
        raise ValueError(f"architecture {name!r} is registered already (overwrite=True)")
    ARCHITECTURES[name] = factory


def import_user_modules():
    """Imports the modules named in `$TFPS_ARM_MODULES` (their `register` calls run once)."""
    for module in filter(
        None, (m.strip() for m in os.environ.get(MODULES_VARIABLE, "").split(","))
    ):
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ValueError(
                f"{MODULES_VARIABLE} names {module!r}, which does not import: {e}"
            ) from e


def check_arch(name):
    """Raises ValueError for an architecture name that is not registered, listing the known
    (after importing the modules of `$TFPS_ARM_MODULES`)."""
    import_user_modules()
    if name not in ARCHITECTURES:
        raise ValueError(
            f"unknown model arch {name!r}; choose one of: "
            + ", ".join(repr(a) for a in ARCHITECTURES)
            + " (or tfps.models.arms.register your own)"
        )
    return name


def event_ranks(name):
    """The event ranks architecture `name` models (`(3,)`: images `(H, W, C)`; `(1, 2, 3)`: any
    event), None when its factory does not say."""
    ranks = getattr(ARCHITECTURES[check_arch(name)], "ranks", None)
    return None if ranks is None else tuple(ranks)


def full_model_config(model_config):
    """`model_config` with `arch` and the arguments older configs left out filled in."""
    arch = model_config.get("arch", DEFAULT_ARCH)
    if arch == DEFAULT_ARCH:
        return {"arch": arch, **pixelcnn.full_model_config(model_config)}
    return {"arch": arch, **model_config}


def build_model(model_config):
    """The model of a `model_config()` dict (no `arch`: a PixelCNN), checked for the protocol."""
    arch = check_arch(model_config.get("arch", DEFAULT_ARCH))
    values = {k: v for k, v in model_config.items() if k != "arch"}
    return protocol.check_protocol(ARCHITECTURES[arch](values))


# ----------------------------------------------------------------------------- canonical ARM
