"""The ImageNet32 ARM of the latent experiments' data [1, sec. 4.2, Table 4 Default column]:
`paper_cifar10`'s settings on `imagenet_resized/32x32` (8 bit).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import paper_cifar10


def get_config():
    config = paper_cifar10.get_config()
    config.data.dataset = "imagenet_resized/32x32"
    return config
