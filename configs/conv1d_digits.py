"""The causal Conv1D ARM of [1, ch. 2] on the embedded 8x8 `digits` (64 variables, K = 17).

Four causal convolutions of 64 channels, kernel 5, the first of option A, dilations 1, 2, 4, 8:
a receptive field of 61 of the 64 previous positions (`tfps.models.conv1d_arm`). Needs the
`model.arch` and generic model fields (`num_layers`, `kernel_size`) of tfps.train.config.

#### References

[1]: Jakub M. Tomczak. Deep Generative Modeling, chapter 2: Autoregressive Models. Springer, 2022.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits"
    config.model.arch = "conv1d"
    config.model.filters = 64
    config.model.num_layers = 4
    config.model.kernel_size = 5
    config.model.dropout_rate = 0.0
    config.optimizer.learning_rate = 1e-3
    config.training.steps = 1500
    config.training.batch_size = 64
    return config
