"""Start TensorBoard on a logdir, ask its HTTP data API which tags it serves, stop it.

    python -m launch.check_tensorboard --logdir=runs/demo \
        --scalars=bpd,arm_calls_percent,forecast_accuracy --images=forecast_mistakes,convergence

Serves on 127.0.0.1 at a free port, polls `/data/plugin/{scalars,images,histograms}/tags` until
every expected tag is served by some run or `--timeout` seconds pass, fetches one image of each
expected image tag, prints what it found, and always stops the server it started. Exits 1 when a
tag is missing. The check behind the TensorBoard test in `tests/test_summaries.py`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

if __package__ in (
    None,
    "",
):  # `python launch/check_tensorboard.py`: make the repository importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

PLUGINS = ("scalars", "images", "histograms")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT_ATTEMPTS = 3  # TensorBoard starts on a fresh free port when another process took the last


def _get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def served_tags(base_url):
    """`{plugin: {run: [tags]}}` for the scalars, images and histograms plugins."""
    return {
        plugin: {
            run: sorted(tags)
            for run, tags in json.loads(_get(f"{base_url}/data/plugin/{plugin}/tags")).items()
        }
        for plugin in PLUGINS
    }


def _missing(tags, expected):
    """Expected `{plugin: [tags]}` that no run serves yet."""
    return {
        plugin: [t for t in wanted if not any(t in run_tags for run_tags in tags[plugin].values())]
        for plugin, wanted in expected.items()
        if wanted
    }


def check(logdir, expected, timeout=60.0, tensorboard=None, log=print):
    """Starts TensorBoard on `logdir`, waits until it serves every `{plugin: [tags]}` in `expected`
    (or `timeout` seconds pass), then stops it.

    Returns `{"tags": {plugin: {run: [tags]}}, "missing": {plugin: [tags]}, "images": {(run, tag):
    png bytes}, "pid": the stopped server's}` (one image per expected image tag and run). Raises
    TimeoutError if the server never answers; a tag still missing at the deadline is reported in
    "missing", not raised.
    """
    deadline = time.monotonic() + timeout
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return _check_on_a_free_port(logdir, expected, deadline, timeout, tensorboard, log)
        except _PortTaken:  # another process took the port between our check and TensorBoard
            continue
    return _check_on_a_free_port(logdir, expected, deadline, timeout, tensorboard, log)


class _PortTaken(RuntimeError):
    """TensorBoard could not bind the free port it was given."""


def _check_on_a_free_port(logdir, expected, deadline, timeout, tensorboard, log):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = tensorboard or [sys.executable, "-m", "tensorboard.main"]
    # Its own session, so stopping it also stops the data server TensorBoard may start.
    server = subprocess.Popen(
        command
        + [f"--logdir={logdir}", "--host=127.0.0.1", f"--port={port}", "--reload_interval=1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    tags, missing, answered = None, None, False
    try:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                message = server.stderr.read().decode()[-2000:]
                if "could not bind to port" in message:
                    # The port was free when chosen; its release lets the next bind(0) of
                    # another process (TensorBoard's own data server, say) receive it.
                    raise _PortTaken(message)
                raise RuntimeError(f"tensorboard exited with {server.returncode}: {message}")
            try:
                tags = served_tags(base_url)
                answered = True
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.5)
                continue
            missing = _missing(tags, expected)
            if not any(missing.values()):
                break
            time.sleep(0.5)
        if not answered:
            raise TimeoutError(f"tensorboard did not answer on {base_url} within {timeout:.0f}s")
        images = {}
        for tag in expected.get("images", ()):
            for run, run_tags in tags["images"].items():
                if tag in run_tags:
                    query = urllib.parse.urlencode({"run": run, "tag": tag, "sample": 0})
                    entries = json.loads(_get(f"{base_url}/data/plugin/images/images?{query}"))
                    images[(run, tag)] = _get(
                        f"{base_url}/data/plugin/images/individualImage?{entries[-1]['query']}"
                    )
        if log:
            for plugin, runs in tags.items():
                for run, run_tags in sorted(runs.items()):
                    log(f"{plugin:>10}  {run}: {', '.join(run_tags)}")
        return {"tags": tags, "missing": missing, "images": images, "pid": server.pid}
    finally:
        _stop(server)


def _stop(server):
    """Stops the server's process group (it is the group leader: start_new_session)."""
    if server.poll() is None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        except ProcessLookupError:
            pass
    server.stderr.close()


FLAGS = flags.FLAGS
flags.DEFINE_string("logdir", None, "The logdir to serve (e.g. runs/demo).", required=True)
flags.DEFINE_list(
    "scalars", ["bpd", "arm_calls_percent", "forecast_accuracy"], "Scalar tags that must be served."
)
flags.DEFINE_list(
    "images", ["samples", "forecast_mistakes", "convergence"], "Image tags that must be served."
)
flags.DEFINE_list("histograms", ["arm_calls_per_example"], "Histogram tags that must be served.")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for TensorBoard to serve everything.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    found = check(
        FLAGS.logdir,
        {"scalars": FLAGS.scalars, "images": FLAGS.images, "histograms": FLAGS.histograms},
        timeout=FLAGS.timeout,
    )
    for (run, tag), png in sorted(found["images"].items()):
        print(f"    image  {run}/{tag}: {len(png)} bytes of PNG")
    missing = {plugin: tags for plugin, tags in found["missing"].items() if tags}
    if missing:
        print(f"MISSING: {missing}")
        return 1
    print("every expected tag is served")
    return 0


if __name__ == "__main__":
    app.run(main)
