"""Demo: a small one-scale ARM on the embedded colour set `photos32` (32x32x3 patches of the
photographs inside scikit-image, tfps.data.photos) at 5 bits, K = 32, the setting of the paper's
5-bit CIFAR10 [1, sec. 4.1] at demo size.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "photos32"
    config.data.bits = 5
    config.model.num_resnets = 2
    config.model.filters = 32
    config.training.batch_size = 16
    config.training.steps = 2000
    return config
