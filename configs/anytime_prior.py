"""A prior over an ordered code [1]: a Transformer over the n codes of a channel autoencoder's run
(their 6 layers of width 512 shrunk to 4 of 128 for 2 CPU cores), trained on its frozen codes:

    python -m launch.train --config=configs/anytime_prior.py \
        --config.data.latents_from=runs/anytime_ae_digits32 --logdir=runs/anytime_prior_digits32
    python -m launch.anytime --model=runs/anytime_prior_digits32

The dataset and bit depth are the autoencoder's (`docs/anytime.md`).

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.arch = "transformer"
    config.model.filters = 128
    config.model.num_layers = 4
    config.model.num_heads = 4
    config.model.dropout_rate = 0.1
    config.optimizer.learning_rate = 1e-3
    config.training.batch_size = 64
    config.training.steps = 3000
    config.training.eval_every = 500
    config.training.checkpoint_every = 500
    config.training.log_every = 100
    config.training.eval_batches = 10
    return config
