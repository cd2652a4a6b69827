"""The paper's CIFAR10 5-bit ARM [1, Table 4, Default column]: `paper_cifar10` on the data
reduced to 5 bits (32 levels). Paper: 1.38 bpd.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import paper_cifar10


def get_config():
    config = paper_cifar10.get_config()
    config.data.bits = 5
    return config
