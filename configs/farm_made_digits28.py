"""FARM + MADE [1, sec. 3-4]: one MADE with the 8 raster orderings on binary 28x28 digits.

FARM's MADE experiment: binarized MNIST (here the embedded `digits28_binary_centred`, MNIST's
layout), a MADE of 2 hidden layers x 1000 units whose k orderings share every weight
(`tfps.models.farm_made.OrderedMADE`), the 8 raster variants (start corner x rows or columns).
The objective is FARM's Monte Carlo MADE loss [1, eq. 1] (`mc`); the others:
`--config.training.ordering_objective=ensemble|ensemble_kl|mixture`
(`tfps.train.ordering_objectives`); fewer orderings, e.g. k = 2:
`--config.model.orderings=tl_rows,br_rows`. Inpaint with `python -m launch.inpaint`.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits28_binary_centred"
    config.model.arch = "farm_made"
    config.model.orderings = "raster8"
    config.model.filters = 1000
    config.model.num_layers = 2
    config.model.dropout_rate = 0.0
    config.training.ordering_objective = "mc"
    config.optimizer.learning_rate = 1e-3
    config.training.steps = 2000
    config.training.batch_size = 64
    return config
