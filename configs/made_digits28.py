"""MADE [1] on the embedded binary 28x28 digits (784 binary variables in raster order).

One hidden layer of 500 units as [1, Table 6]'s "MADE 1hl (1 mask)" on binarized MNIST, one fixed
natural ordering. `config.model.filters` is the hidden width and `num_layers` the hidden layers
(`tfps.models.made.RUN_CONFIG_FIELDS`). Needs the `model.arch` and generic model fields of
tfps.train.config.

#### References

[1]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder for
     Distribution Estimation. In ICML, 2015.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits28_binary"
    config.model.arch = "made"
    config.model.filters = 500
    config.model.num_layers = 1
    config.model.dropout_rate = 0.0
    config.optimizer.learning_rate = 1e-3
    config.training.steps = 2000
    config.training.batch_size = 64
    return config
