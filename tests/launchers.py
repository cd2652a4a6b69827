"""Running launchers: in a subprocess from the repository root, as a user would, or in this process.

`launch` starts `python -m launch.x` (or the script) in a subprocess: what proves a launcher works
from a shell. `launch_here` runs the same launcher inside the test process, with absl's flags and
the launcher modules reset before and after (no new Python, no TensorFlow import: seconds saved per
call), and returns the same `subprocess.CompletedProcess`-like result. A launcher that configures
the TensorFlow runtime (logical CPU devices for `--strategy`, `--cpu_replicas`) must run in a
subprocess: the runtime of this process is already initialised.
"""

import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import traceback

from absl import app, flags
from absl import logging as absl_logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, timeout=600, **kwargs):
    """`subprocess.run(args)` in the repository root, text output captured, TF start-up quiet."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **kwargs.pop("env", {})}
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


def launch(module, *flags, as_script=False, timeout=600):
    """`python -m launch.x flags...`, or `python launch/x.py flags...` with `as_script`."""
    if as_script:
        command = [sys.executable, os.path.join(REPO, *module.split(".")) + ".py"]
    else:
        command = [sys.executable, "-m", module]
    return run(command + list(flags), timeout=timeout)


# absl's own flags (help, logging) and those of other modules are kept; every flag a launcher
# module defines (a test module may have imported one already) is removed around each run.
app.define_help_flags()


def _launcher_flags():
    return {
        flag.name
        for module, defined in flags.FLAGS.flags_by_module_dict().items()
        if module.startswith("launch.") or module == "__main__"
        for flag in defined
    }


_BASE_FLAGS = frozenset(flags.FLAGS) - _launcher_flags()


def _forget_launchers():
    """Removes the flags the launchers defined and their modules (so that the next import defines
    its flags anew, reading the new command line as a fresh process would)."""
    for name in list(flags.FLAGS):
        if name not in _BASE_FLAGS:
            delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    for name in [n for n in sys.modules if n.startswith("launch.")]:
        del sys.modules[name]


@contextlib.contextmanager
def _captured_logging(stream):
    """Python and absl log handlers write to `stream` (as a subprocess's stderr would hold them)."""
    handlers = [absl_logging.get_absl_handler().python_handler] + [
        h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
    ]
    old = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = stream
    try:
        yield
    finally:
        for handler, previous in zip(handlers, old):
            handler.stream = previous


def launch_here(module, *flag_args):
    """`python -m module flags...` inside this process, from the repository root: a
    `subprocess.CompletedProcess` with the exit status and the text written to stdout and stderr
    (an uncaught exception is exit status 1 with its traceback, as in a subprocess). The global
    Keras precision policy a training run sets is restored after it, as a fresh process would
    start."""
    import keras  # noqa: PLC0415 - only the in-process launchers need it

    policy = keras.mixed_precision.global_policy()
    argv = [os.path.join(REPO, *module.split(".")) + ".py", *flag_args]
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    returncode = 0
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    _forget_launchers()
    try:
        sys.argv = list(argv)
        os.chdir(REPO)
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _captured_logging(err),
        ):
            try:
                launcher = importlib.import_module(module)
                parser = getattr(getattr(launcher, "config_flags", None), "parse_flags", None)
                app.run(
                    launcher.main,
                    argv=list(argv),
                    flags_parser=parser or app.parse_flags_with_usage,
                )
            except SystemExit as e:
                code = e.code
                if isinstance(code, str):
                    err.write(code + "\n")
                    code = 1
                returncode = int(code or 0)
            except Exception:  # noqa: BLE001 - reported as a subprocess would: traceback, status 1
                err.write(traceback.format_exc())
                returncode = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        keras.mixed_precision.set_global_policy(policy)
        _forget_launchers()
    return subprocess.CompletedProcess(argv, returncode, out.getvalue(), err.getvalue())
