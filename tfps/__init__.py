"""tfps: predictive sampling with forecasting autoregressive models.

Wiggers & Hoogeboom, Predictive Sampling with Forecasting Autoregressive Models, ICML 2020.

`tfps.check_autoregressive(model, event_shape, num_categories)` checks that a model of the ARM
protocol (`tfps.arms`) is autoregressive (`tfps.causality`), in its logits and its
representation h; it raises `tfps.NotAutoregressiveError` naming the first leaking pair of
positions.
"""

__version__ = "0.1.0"

_LAZY = {"check_autoregressive": "causality", "NotAutoregressiveError": "causality"}


def __getattr__(name):
    """The package-level names, imported on first use (`import tfps` stays free of TensorFlow)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"tfps.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tfps' has no attribute {name!r}")
