"""Running launchers and tools in a subprocess from the repository root, as a user would."""

import os
import subprocess
import sys

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
