"""The test processes' TensorFlow settings (tests/conftest.py): Grappler off, except in the tests
that ask for the `graph_optimizations` fixture (or everywhere with TFPS_TEST_GRAPPLER=1), so the
tests that check what Grappler could break keep running with it."""

import conftest
import pytest
import tensorflow as tf
from conftest import GRAPPLER


def _grappler_on():
    return not tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)


def test_grappler_is_off_in_the_test_processes_unless_asked_for():
    assert _grappler_on() is GRAPPLER


@pytest.mark.usefixtures("graph_optimizations")
def test_the_graph_optimizations_fixture_turns_grappler_on():
    assert _grappler_on()


def test_the_fixture_gives_the_setting_back():
    fixture = conftest.graph_optimizations.__wrapped__()  # the generator behind the fixture
    next(fixture)
    assert _grappler_on()
    with pytest.raises(StopIteration):
        next(fixture)
    assert _grappler_on() is GRAPPLER
