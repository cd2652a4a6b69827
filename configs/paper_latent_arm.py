"""The paper's ARM on the frozen latents [1, sec. 4.2, Appendix A.3]: the PixelCNN of
[1, Table 4] (Default column), 200000 steps, one forecasting module, on the latents of a
`configs/paper_latent_autoencoder.py` run:

    python -m launch.train --config=configs/paper_latent_arm.py \
        --config.data.latents_from=runs/cifar10_ae

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.num_scales = 3
    config.forecast.steps = 1
    config.forecast.filters = 162
    return config
