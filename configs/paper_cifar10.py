"""The paper's CIFAR10 8-bit ARM [1, Table 4, Default column; sec. 4.1]: the 3-scale PixelCNN++
with 5 gated resnets of 162 filters, dropout 0.5, one forecasting module of 162 filters, Adam 2e-4
decayed by 0.999995 per step, batch 64, 200000 steps. Needs the tfds download; paper: 3.08 bpd.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "cifar10"
    config.model.num_scales = 3
    config.forecast.steps = 1
    config.forecast.filters = 162
    return config
