"""`--config`: a preset file (`configs/*.py`) with field-by-field overrides, as flax and vdm do.

    python -m launch.train --config=configs/digits.py --config.model.filters=64

`define_config(kind, default)` defines the flag (ml_collections `DEFINE_config_file`) with a help
text that lists every field of the run kind: its section, type, value in the chosen preset and
meaning, so `--helpfull` documents them. `typed_config(kind)` turns the parsed preset into the
library's typed, validated config (`tfps.train.config`), a bad value or unknown field becoming one
usage error before anything is written. Without `--config`, an existing run directory's own
config (its config.json) is resumed, with any `--config.<section>.<field>` overrides:

    python -m launch.train --logdir=runs/mine --config.training.steps=20000
"""

import importlib.util
import os
import sys

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from tfps.train import config as config_lib
from tfps.train import rundir

FLAGS = flags.FLAGS


def _preset_named_in(argv, default):
    """The preset path given as --config on the command line (default: `default`)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return default


def _preset_values(path):
    """The nested config of the preset at `path`; None if the file cannot be read (the flag's own
    parsing reports that, naming the paths it tried). A preset that fails when it runs (a syntax
    error, an exception in `get_config()`) is one error naming the preset and what failed, and
    exit status 1."""
    try:
        spec = importlib.util.spec_from_file_location("tfps_preset", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (OSError, ImportError, AttributeError):  # no such file (spec None): the flag reports it
        return None
    except Exception as e:  # noqa: BLE001 - the user's preset code: whatever it raises is named
        _preset_failed(path, e)
    try:
        values = module.get_config()
    except Exception as e:  # noqa: BLE001 - as above
        _preset_failed(path, e)
    return values if isinstance(values, ml_collections.ConfigDict) else None


def _preset_failed(path, error):
    sys.stderr.write(f"FATAL Flags parsing error: --config={path}: the preset fails: "
                     f"{type(error).__name__}: {error}\n")  # fmt: skip
    sys.exit(1)


def define_run_flags(kind, default, writes):
    """Defines `--logdir` (the run directory, which holds `writes`) and `--config` for a run of
    `kind` (`tfps.train.config.ARM` / `AUTOENCODER`), with `default` the preset used without
    `--config`."""
    flags.DEFINE_string(
        "logdir", None, f"Run directory: {writes}. Reused to resume.", required=True
    )
    path = _preset_named_in(sys.argv, default)
    listing = config_lib.field_help(kind, _preset_values(path))
    help_text = (
        f"A preset file (configs/*.py; default {default}) returning the run's config. Override "
        f"any field with --config.<section>.<field>=value. The fields, with their values in "
        f"{path}:\n{listing}"
    )
    try:  # the default preset and its overrides are parsed here already
        config_flags.DEFINE_config_file("config", default, help_text, lock_config=True)
    except (AttributeError, KeyError) as e:
        _unknown_field(e)


def typed_config(kind, logdir=None):
    """The typed config of the parsed `--config` (a `tfps.train.config.TrainConfig` or
    `AutoencoderConfig`); app.UsageError naming the problem when a value is invalid.

    When `--config` is not on the command line and `logdir` holds a run, that run's recorded
    config with the command line's `--config.<section>.<field>` overrides.
    """
    recorded = os.path.join(logdir or "", rundir.CONFIG_FILE)
    try:
        if logdir and _preset_named_in(sys.argv, None) is None and os.path.isfile(recorded):
            return config_lib.from_config_dict(_resumed(kind, logdir), kind)
        return config_lib.from_config_dict(FLAGS.config, kind)
    except (OSError, TypeError, ValueError) as e:  # OSError: the preset could not be loaded
        source = recorded if os.path.isfile(recorded) else FLAGS["config"].config_filename
        raise app.UsageError(f"--config={source}: {e}") from e


def _resumed(kind, logdir):
    """The nested config recorded in `logdir`, with the command line's field overrides."""
    train = rundir.read_config(logdir)["train"]
    nested = config_lib.to_config_dict(config_lib.CONFIG_CLASSES[kind].from_dict(train))
    for arg in sys.argv[1:]:
        if arg.startswith("--config."):
            section, key = arg[len("--config.") :].split("=", 1)[0].split(".", 1)
            nested[section][key] = FLAGS.config[section][key]
    return nested


def no_arguments(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def parse_flags(argv):
    """absl's flag parsing (`app.run(main, flags_parser=parse_flags)`), with an override of a
    field the preset does not have reported like any other bad flag, without a traceback."""
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as e:
        _unknown_field(e)


def _unknown_field(error):
    """Reports ml_collections' error for an unknown `--config.<path>` as absl reports bad flags."""
    message = error
    while isinstance(message, BaseException) and message.args:  # AttributeError(KeyError(str))
        message = message.args[0]
    message = str(message)
    field, _, hint = message.partition("\n")
    sys.stderr.write(
        f"FATAL Flags parsing error: --config has no field {field}"
        f"{'; ' + hint if hint else ''} (--helpfull lists the fields)\n"
    )
    sys.exit(1)
