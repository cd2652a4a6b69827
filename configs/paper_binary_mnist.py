"""The paper's binary MNIST ARM [1, Table 4, Binary MNIST column; sec. 4.1]: the 3-scale
PixelCNN++ with 2 gated resnets of 60 filters, dropout 0.5, 20 forecasting modules of 60 filters,
Adam 2e-4 decayed by 0.999995 per step, batch 64, 200000 steps. Needs the tfds download of
`binarized_mnist`; paper: 0.150 test bpd.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "binarized_mnist"
    config.model.num_scales = 3
    config.model.num_resnets = 2
    config.model.filters = 60
    config.forecast.steps = 20
    config.forecast.filters = 60
    return config
