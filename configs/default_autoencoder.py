"""The discrete autoencoder's default config [1, Appendix A.3]: width 512, a 4 x 8 x 8 latent of
128 categories, 50000 steps, optimisation as [1, Table 4]; the embedded `digits32` data.

    python -m launch.train_autoencoder --config=configs/default_autoencoder.py ...

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from tfps.train import config


def get_config():
    return config.default_config(config.AUTOENCODER)
