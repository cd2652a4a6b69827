"""absl flags from a config dataclass: one flag per field, validated by the library's checks.

`launch/train_autoencoder.py` uses it; `launch/train.py` defines the same kind of flags inline.
"""
import dataclasses
import typing

from absl import flags

from tfps import data as tfps_data

_DEFINE = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}


def define_config_flags(config_cls, check_field):
    """Defines a flag per field of `config_cls` (default and help from the field) and registers
    `check_field(name, value)` (raising ValueError) as its validator, plus a dataset/bits check.
    Returns the field names."""
    names = []
    for field in dataclasses.fields(config_cls):
        base = next((t for t in typing.get_args(field.type) if t is not type(None)), field.type)
        help_text = field.metadata["help"]
        if field.name == "dataset":
            help_text += f" One of: {', '.join(tfps_data.DATASETS)}."
        _DEFINE[base](field.name, field.default, help_text)
        names.append(field.name)

        def check(value, name=field.name):
            try:
                check_field(name, value)
            except ValueError as e:
                raise flags.ValidationError(str(e)) from e
            return True
        flags.register_validator(field.name, check)

    if {"dataset", "bits"} <= set(names):
        @flags.multi_flags_validator(["dataset", "bits"])
        def _check_bits(values):
            try:
                tfps_data.dataset_info(values["dataset"], values["bits"])
            except ValueError as e:
                raise flags.ValidationError(str(e)) from e
            return True
    return names
