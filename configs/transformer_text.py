"""A character-level decoder-only Transformer ARM [1] on the embedded `text_python` corpus.

Events are sequences `(L,)` of characters, K the vocabulary size (the data set's). Four pre-norm
blocks of width 128 (`config.model.filters`) with 4 heads and learned positions
(`tfps.models.transformer`); its fair ancestral baseline is
`tfps.sampling.kv_cache.cached_ancestral_sample`. Needs the `model.arch` and generic model fields
(`num_layers`, `num_heads`) of tfps.train.config and the `text_python` data set.

#### References

[1]: Ashish Vaswani, Noam Shazeer, Niki Parmar, et al. Attention Is All You Need. In NeurIPS,
     2017.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "text_python"
    config.model.arch = "transformer"
    config.model.filters = 128
    config.model.num_layers = 4
    config.model.num_heads = 4
    config.model.dropout_rate = 0.1
    config.optimizer.learning_rate = 5e-4
    config.training.steps = 3000
    config.training.batch_size = 32
    return config
