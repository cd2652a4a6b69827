"""A decoder-only Transformer ARM [1] over the 64 flattened pixels of the embedded `digits`.

Two pre-norm blocks of width 64 (`config.model.filters`) with 4 heads and learned positions
(`tfps.models.transformer`). Its fair ancestral baseline is
`tfps.sampling.kv_cache.cached_ancestral_sample` (a key/value cache). Needs the `model.arch` and
generic model fields (`num_layers`, `num_heads`) of tfps.train.config.

#### References

[1]: Ashish Vaswani, Noam Shazeer, Niki Parmar, et al. Attention Is All You Need. In NeurIPS,
     2017.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits"
    config.model.arch = "transformer"
    config.model.filters = 64
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.dropout_rate = 0.1
    config.optimizer.learning_rate = 1e-3
    config.training.steps = 1500
    config.training.batch_size = 64
    return config
