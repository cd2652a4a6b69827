"""tfps: predictive sampling with forecasting autoregressive models.

Wiggers & Hoogeboom, Predictive Sampling with Forecasting Autoregressive Models, ICML 2020.
"""

__version__ = "0.1.0"
