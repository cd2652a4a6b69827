"""The ARM's default config: every field at its default, [1, Table 4] (Default column).

    python -m launch.train --config=configs/default.py --config.data.dataset=cifar10 ...

Presets start from this one (`get_config()`) and change what differs. Fields and sections:
`python -m launch.train --helpfull`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from tfps.train import config


def get_config():
    return config.default_config(config.ARM)
