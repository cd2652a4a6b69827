"""Shared pytest fixtures."""

import pytest

from tfps.train import training

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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config):
    """A finished 20-step `digits` run (checkpoints at steps 10 and 20): `(logdir, metrics)`.

    Shared by the whole session: copy the directory before changing anything in it.
    """
    logdir = str(tmp_path_factory.mktemp("tiny_run"))
    metrics = training.train(tiny_config(steps=20), logdir)
    return logdir, metrics


@pytest.fixture(scope="session")
def tiny_forecast_run(tmp_path_factory, tiny_config):
    """A finished 20-step `digits` run with T = 2 shared forecasting heads: `(logdir, metrics)`.

    Shared by the whole session: copy the directory before changing anything in it.
    """
    logdir = str(tmp_path_factory.mktemp("tiny_forecast_run"))
    metrics = training.train(tiny_config(steps=20, forecast_steps=2), logdir)
    return logdir, metrics
