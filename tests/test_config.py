"""Tests for tfps/train/config.py and the presets in configs/: typed validation, the nested form,
and the paper's settings ([1, Table 4, Appendix A.3])."""

import dataclasses
import glob
import importlib.util
import os

import keras
import pytest

from tfps.data import builtin
from tfps.models import heads
from tfps.train import autoencoder_training, config, training

from launchers import REPO

PRESETS = sorted(glob.glob(os.path.join(REPO, "configs", "*.py")))


def load_preset(name):
    path = os.path.join(REPO, "configs", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"preset_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def build(typed):
    """The preset's model (and forecasting heads), built without training or data."""
    keras.utils.set_random_seed(0)
    info = builtin.dataset_info(typed.dataset, typed.bits)
    if typed.KIND == config.AUTOENCODER:  # spatial or channel code (anytime_*)
        return autoencoder_training.new_autoencoder(typed, info)
    model = training.new_model(typed, info)
    if typed.forecast_steps:
        heads.heads_for_model(model, typed.forecast_steps, typed.forecast_filters)
    return model


def test_every_preset_is_a_valid_config_and_builds_its_model():
    assert len(PRESETS) >= 13
    built = {}  # presets that differ in their data source only share one build of the model
    for path in PRESETS:
        name = os.path.basename(path)[:-3]
        nested = load_preset(name)
        typed = config.from_config_dict(nested)
        info = builtin.dataset_info(typed.dataset, typed.bits)
        ignored = ("data", "training", "optimizer")
        sections = {k: v for k, v in nested.to_dict().items() if k not in ignored}
        key = repr((typed.KIND, info.image_shape, info.num_categories, sorted(sections.items())))
        if key not in built:
            built[key] = build(typed).count_params()
        assert built[key] > 0, name
    assert len(built) < len(PRESETS)  # the paper's 32x32x3 presets share one architecture


TABLE_4 = {  # [1, Table 4]: (resnets, filters, dropout, lr, decay, batch, steps, T, T filters)
    "paper_binary_mnist": (2, 60, 0.5, 2e-4, 0.999995, 64, 200000, 20, 60),
    "paper_cifar10": (5, 162, 0.5, 2e-4, 0.999995, 64, 200000, 1, 162),
    "paper_cifar10_5bit": (5, 162, 0.5, 2e-4, 0.999995, 64, 200000, 1, 162),
    "paper_svhn": (5, 162, 0.5, 2e-4, 0.999995, 64, 200000, 1, 162),
    "paper_imagenet32": (5, 162, 0.5, 2e-4, 0.999995, 64, 200000, 1, 162),
    "paper_latent_arm": (5, 162, 0.5, 2e-4, 0.999995, 64, 200000, 1, 162),
}
DATA = {
    "paper_binary_mnist": ("binarized_mnist", None, (28, 28, 1), 2),
    "paper_cifar10": ("cifar10", None, (32, 32, 3), 256),
    "paper_cifar10_5bit": ("cifar10", 5, (32, 32, 3), 32),
    "paper_svhn": ("svhn_cropped", None, (32, 32, 3), 256),
    "paper_imagenet32": ("imagenet_resized/32x32", None, (32, 32, 3), 256),
}


@pytest.mark.parametrize("name", sorted(TABLE_4))
def test_paper_presets_have_table_4s_numbers(name):
    typed = config.from_config_dict(load_preset(name), config.ARM)
    got = (
        typed.num_resnets, typed.filters, typed.dropout_rate, typed.learning_rate,
        typed.lr_decay, typed.batch_size, typed.steps, typed.forecast_steps,
        typed.forecast_filters,
    )  # fmt: skip
    assert got == TABLE_4[name]
    assert typed.weight_decay == 1e-6 and typed.forecast_weight == 0.01
    assert typed.num_scales == 3  # the PixelCNN++ hierarchy
    if name in DATA:
        dataset, bits, shape, k = DATA[name]
        assert (typed.dataset, typed.bits) == (dataset, bits)
        model = build(typed)
        assert (model.image_shape, model.num_categories) == (shape, k)
        assert (model.num_resnets, model.filters) == TABLE_4[name][:2]


def test_paper_autoencoder_preset_has_appendix_a3s_numbers():
    typed = config.from_config_dict(load_preset("paper_latent_autoencoder"), config.AUTOENCODER)
    assert (typed.width, typed.latent_channels, typed.latent_categories) == (512, 4, 128)
    assert (typed.steps, typed.learning_rate, typed.lr_decay, typed.batch_size) == (
        50000, 2e-4, 0.999995, 64,
    )  # fmt: skip
    model = build(typed)
    assert model.latent_shape == (8, 8, 4) and model.image_shape == (32, 32, 3)


def test_demo_presets_are_the_demo_configurations():
    digits = config.from_config_dict(load_preset("digits"))
    assert (digits.dataset, digits.num_resnets, digits.filters, digits.steps) == (
        "digits", 2, 32, 1500,
    )  # fmt: skip
    binary = config.from_config_dict(load_preset("digits28_binary"))
    assert (binary.num_scales, binary.batch_size, binary.dropout_rate, binary.steps) == (
        3, 16, 0.1, 1000,
    )  # fmt: skip


def test_default_preset_is_the_dataclass_defaults():
    assert config.from_config_dict(load_preset("default")) == config.TrainConfig()
    assert config.from_config_dict(load_preset("default_autoencoder")) == (
        config.AutoencoderConfig()
    )


@pytest.mark.parametrize("cls", [config.TrainConfig, config.AutoencoderConfig])
def test_nested_form_round_trips(cls):
    typed = dataclasses.replace(cls(), bits=None, batch_size=7, seed=3)
    nested = config.to_config_dict(typed)
    assert nested.training.batch_size == 7 and nested.kind == typed.KIND
    assert config.from_config_dict(nested) == typed


def test_shared_fields_are_declared_once():
    arm = {f.name: f for f in dataclasses.fields(config.TrainConfig)}
    ae = {f.name: f for f in dataclasses.fields(config.AutoencoderConfig)}
    shared = {f.name for f in dataclasses.fields(config.RunConfig)}
    assert (
        shared == set(arm) & set(ae) and len(shared) == 22
    )  # 18 + 4 of tfps.distribute.strategies
    assert arm["learning_rate"].metadata is ae["learning_rate"].metadata


@pytest.mark.parametrize("change, message", [
    (lambda c: c.model.__setitem__("filters", 0), "filters must be >= 1, got 0"),
    (lambda c: c.data.__setitem__("dataset", "nope"), "dataset must be one of"),
    (lambda c: c.forecast.__setitem__("steps", 64), "forecast_steps must be below d = 64"),
    (lambda c: c.__setitem__("kind", "autoencoder"),
     "config.data.latents_from is not a field of autoencoder configs"),
])  # fmt: skip
def test_bad_presets_fail_naming_the_problem(change, message):
    nested = load_preset("digits")
    nested.unlock()
    change(nested)
    with pytest.raises(ValueError, match=message):
        config.from_config_dict(nested)


def test_a_preset_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="of kind 'autoencoder', but one of kind 'arm'"):
        config.from_config_dict(load_preset("latent_autoencoder"), config.ARM)


def test_old_config_json_train_sections_still_load():
    """config.json written before the presets holds the flat TrainConfig, unknown keys too."""
    old = {"dataset": "digits", "num_resnets": 2, "filters": 32, "steps": 1500, "bits": None,
           "forecast_steps": 0, "removed_option": 1}  # fmt: skip
    typed = config.TrainConfig.from_dict(old).validate()
    assert (typed.num_resnets, typed.filters, typed.steps) == (2, 32, 1500)


def test_help_lists_every_field_with_its_section():
    text = config.field_help(config.ARM, load_preset("paper_cifar10"))
    assert "--config.model.filters (int, 162)" in text
    assert "--config.data.dataset (str, 'cifar10')" in text
    assert "--config.forecast.steps (int, 1)" in text
    assert len(text.splitlines()) == len(dataclasses.fields(config.TrainConfig))


def test_a_preset_that_returns_no_config_is_refused():
    with pytest.raises(ValueError, match="a config is an ml_collections.ConfigDict, got int"):
        config.from_config_dict(3)
