"""absl flags from a config dataclass: one flag per field, validated by the library's checks.

`launch/train.py` (TrainConfig) and `launch/train_autoencoder.py` (AutoencoderConfig) use it.
"""
import dataclasses
import typing

from absl import flags

from tfps import data as tfps_data

_DEFINE = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string,
           bool: flags.DEFINE_bool}


def _check_dataset_bits(values):
    tfps_data.dataset_info(values["dataset"], values["bits"])


def define_config_flags(config_cls, check_field, check_together=("dataset", "bits"),
                        check_values=_check_dataset_bits):
    """Defines a flag per field of `config_cls` (default and help from the field) and registers
    `check_field(name, value)` (raising ValueError) as its validator. `check_values(values)`
    (raising ValueError) checks the fields `check_together` jointly (default: that the bit depth
    suits the dataset). Returns the field names."""
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

    if set(check_together) <= set(names):
        @flags.multi_flags_validator(list(check_together))
        def _check_together(values):
            try:
                check_values(values)
            except ValueError as e:
                raise flags.ValidationError(str(e)) from e
            return True
    return names
