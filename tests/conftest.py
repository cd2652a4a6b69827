"""Shared pytest fixtures, and the test tiers.

Two tiers: `make test-fast` runs `-m "not slow"` (unit, exactness and causality tests on untrained
tiny models, in minutes) and `make test` runs everything. A test is `slow` when it trains (it asks
for a trained-run fixture, `TRAINED_FIXTURES`), runs a launcher in a subprocess (its code calls
`launch(` or `run(` of `tests/launchers.py`, or `subprocess`), or takes over 3 s for another
reason (listed in tests/slow_tests.txt).
"""

import fcntl
import inspect
import json
import os
import re

import pytest

# One TensorFlow thread per pool in each test process (and the launchers it starts): the suite
# runs one xdist worker per core, and tiny models gain nothing from a pool but its hand-offs (a
# test of the 3-scale incremental oracle: 47 s instead of 55 s alone). TF reads these when its
# runtime starts; set before any test runs an op. Samples do not depend on it (exactness is
# asserted within one process); trained floats only to rounding.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import tensorflow as tf  # noqa: E402 - after the thread settings above

from tfps.train import training  # noqa: E402

# Graph optimisation (Grappler) off in the test processes, on where users run: every test builds
# and first-calls tiny graphs, whose optimisation costs more than it saves (an export's first call:
# 5.0 s instead of 8.7 s; export-heavy modules ~11% faster, runs interleaved on 2 cores).
# Exactness does not rest on it (each test compares samples within one process, and the eager
# oracles never see Grappler). What Grappler alone can break (its remapper once crashed on the
# Gated PixelCNN's gradient: tfps/models/gated_pixelcnn.py) is tested with it on: every launcher
# run in a subprocess, and the tests that ask for the `graph_optimizations` fixture (every ARM
# family trained and sampled with every method, the export's exactness, the shipped run).
# TFPS_TEST_GRAPPLER=1 runs the whole suite with it on.
GRAPPLER = os.environ.get("TFPS_TEST_GRAPPLER") == "1"
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not GRAPPLER})


@pytest.fixture
def graph_optimizations():
    """Grappler on for this test, as TensorFlow runs for users (the suite runs without it: see
    `GRAPPLER` above); functions first called in the test are optimised."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not GRAPPLER})


# A model small enough to train in seconds on 2 CPU cores.
_TINY = dict(
    dataset="digits",
    num_resnets=1,
    filters=16,
    batch_size=32,
    log_every=10,
    eval_every=10,
    checkpoint_every=10,
    eval_batches=2,
    seed=0,
)


@pytest.fixture(scope="session")
def tiny_config():
    """`make(**overrides) -> TrainConfig` for a tiny digits model (1 resnet, 16 filters)."""

    def make(**overrides):
        return training.TrainConfig(**{**_TINY, "steps": 20, **overrides})

    return make


def shared_run(tmp_path_factory, name, train):
    """`(logdir, metrics)` of `train(logdir) -> metrics`, run once per test session: the first
    xdist worker to ask trains under a lock in the session's shared temporary directory, the others
    wait for it and read its metrics (so a session trains each shared run once, not once per
    worker)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    logdir, done = str(root / name), root / f"{name}.metrics.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            metrics = train(logdir)
            done.write_text(
                json.dumps(metrics, default=lambda value: value.item())
            )  # numpy scalars
    return logdir, json.loads(done.read_text())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config):
    """A finished 20-step `digits` run (checkpoints at steps 10 and 20): `(logdir, metrics)`.

    Shared by the whole session (and its workers): copy the directory before changing anything
    in it.
    """
    return shared_run(
        tmp_path_factory, "tiny_run", lambda logdir: training.train(tiny_config(steps=20), logdir)
    )


@pytest.fixture(scope="session")
def tiny_forecast_run(tmp_path_factory, tiny_config):
    """A finished 20-step `digits` run with T = 2 shared forecasting heads: `(logdir, metrics)`.

    Shared by the whole session (and its workers): copy the directory before changing anything
    in it.
    """
    return shared_run(
        tmp_path_factory,
        "tiny_forecast_run",
        lambda logdir: training.train(tiny_config(steps=20, forecast_steps=2), logdir),
    )


# Fixtures that train a model (or export one) before the test runs.
TRAINED_FIXTURES = {
    "tiny_run",
    "tiny_forecast_run",
    "text_run",
    "runs",
    "cli_export",
    "exports",
    "ae_run",
    "latent_arm_run",
    "sequence_run",
    "sampled_run",
    "trained_case",
    "farm_run",
    "channel_prior",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: trains, exports or starts a launcher; left out of `make test-fast`"
    )


def _starts_a_subprocess(function):
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return re.search(r"(?<![.\w])(launch|run)\(|_launcher\(|subprocess\.", source) is not None


def _listed_slow():
    """The node ids of tests/slow_tests.txt (tests slow by their time alone; a line may end in a
    `  # why` comment)."""
    path = os.path.join(os.path.dirname(__file__), "slow_tests.txt")
    with open(path) as f:
        lines = (line.split("  #", 1)[0].strip() for line in f if not line.startswith("#"))
        return {line for line in lines if line}


# The modules in falling order of their time in a full run (`--durations=0` on 2 cores), run
# first: pytest-xdist (`--dist loadfile --no-loadscope-reorder`, the Makefile) hands out modules
# in collection order, so the longest go first and the short ones fill the gaps at the end
# (longest processing time first), instead of a long module starting last on one worker while
# the other idles. Modules not listed (under 20 s) follow in their usual order.
LONGEST_FIRST = (
    "test_incremental", "test_export", "test_readme", "test_distribute", "test_training",
    "test_arm_families", "test_export_incremental", "test_latent", "test_arms", "test_anytime",
    "test_inpainting", "test_family_sampling",
    "test_forecast", "test_api", "test_ordered_code", "test_sampling", "test_benchmarking",
    "test_bad_input", "test_heads", "test_regression", "test_config", "test_orderings",
    "test_sequence_sources", "test_sources", "test_kv_cache", "test_scheduling",
    "test_sample_launcher", "test_data", "test_summaries",
)  # fmt: skip


def _module_rank(item):
    module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_module_rank)  # stable: a module's tests keep their order
    listed = _listed_slow()
    for item in items:
        function = getattr(item, "function", None)
        node = item.nodeid.split("tests/", 1)[-1]
        if (
            node in listed
            or node.startswith("test_export.py::")  # every test there builds an export
            or TRAINED_FIXTURES & set(getattr(item, "fixturenames", ()))
            or (function is not None and _starts_a_subprocess(function))
        ):
            item.add_marker(pytest.mark.slow)
