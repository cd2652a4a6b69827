"""The paper's SVHN ARM [1, Table 4, Default column]: `paper_cifar10`'s settings on
`svhn_cropped` (8 bit). Paper: 1.78 bpd.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import paper_cifar10


def get_config():
    config = paper_cifar10.get_config()
    config.data.dataset = "svhn_cropped"
    return config
