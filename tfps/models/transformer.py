"""A decoder-only Transformer ARM: masked self-attention over the flattened event [1; 3].

The d variables, in raster order, are a sequence of tokens. Position i of the network gets the
embedding of x_{i-1} (a learned start vector at i = 0) plus a learned position embedding, and
self-attention is masked so that position i attends to positions <= i only [1, sec. 3.2.3]; so
the output at i depends on x_<i. Pre-norm blocks [2]:

    z = E(shift(x)) + P
    z = z + MHA(LN(z), causal mask),   z = z + MLP(LN(z))      (num_layers times)
    h = LN(z),   logits = V h + b

Sampling one position per step only needs the keys and values of the earlier positions, which do
not change once computed: `Transformer.position_step` computes one new position per example from
fixed-size caches (`[B, heads, d, head_dim]` per layer) [3, slides "Speedup by caching
activations"]. `tfps.sampling.kv_cache.cached_ancestral_sample` runs it in a standalone
`tf.while_loop`; `tfps.sampling.kv_cache.KeyValueArm` (`Transformer.cached_ancestral_arm`) runs it
inside the sampler, as the method `ancestral_cached`: the fair ancestral baseline, with d steps of
O(d) work each instead of d calls of the whole network. Both equal plain ancestral sampling for the
same Gumbel noise.

#### References

[1]: Ashish Vaswani, Noam Shazeer, Niki Parmar, et al. Attention Is All You Need. In NeurIPS,
     2017.

[2]: Alec Radford, Jeffrey Wu, Rewon Child, et al. Language Models are Unsupervised Multitask
     Learners. OpenAI, 2019.

[3]: CS294-158 Deep Unsupervised Learning, lecture 2: Autoregressive Models. UC Berkeley, 2020.
"""

import math

import keras
import tensorflow as tf

from tfps.models import arm_base
from tfps.models import layers as tfps_layers
from tfps.sampling import kv_cache

ARCH = "transformer"
# Constructor option -> generic model field of the run config (tfps.train.config).
RUN_CONFIG_FIELDS = {
    "model_dim": "filters",
    "num_layers": "num_layers",
    "num_heads": "num_heads",
    "dropout_rate": "dropout_rate",
}


def attend(q, k, v, mask):
    """Masked dot-product attention [1, eq. 1]: q `[B, n, Lq, e]`, k, v `[B, n, Lk, e]`, mask bool
    broadcastable to `[B, n, Lq, Lk]` (True: may attend) -> `[B, n, Lq, e]`. Masked scores are
    -inf, so they get exactly zero weight (the same in the full and the cached computation)."""
    scores = tf.einsum("bnqe,bnke->bnqk", q, k) / math.sqrt(q.shape[-1])
    scores = tf.where(mask, scores, tf.constant(-float("inf"), scores.dtype))
    return tf.einsum("bnqk,bnke->bnqe", tf.nn.softmax(scores, axis=-1), v)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention where position i attends to positions <= i [1, sec. 3.2].

    `call(x)`: `[B, L, F] -> [B, L, F]`. `step(x_t, keys, values, t)`: one new position per
    example, t int32 `[B]`, from `[B, F]` and the caches `[B, heads, d, F / heads]` (rows < t
    valid) -> (output `[B, F]`, caches with row t written).

    #### References

    [1]: Ashish Vaswani et al. Attention Is All You Need. In NeurIPS, 2017.
    """

    def __init__(self, model_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.model_dim = arm_base.check_int("model_dim", model_dim)
        self.num_heads = arm_base.check_int("num_heads", num_heads)
        if self.model_dim % self.num_heads:
            raise ValueError(
                f"model_dim ({model_dim}) must be a multiple of num_heads ({num_heads})"
            )
        self.head_dim = self.model_dim // self.num_heads
        self.qkv = keras.layers.Dense(3 * self.model_dim, name="qkv")
        self.out = keras.layers.Dense(self.model_dim, name="out")

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.out.build(input_shape)

    def project(self, x):
        """`[B, ..., F]` -> q, k, v, each `[B, heads, ..., head_dim]` (the `...` axis moved)."""
        qkv = self.qkv(x)
        shape = tf.concat([tf.shape(x)[:-1], [3, self.num_heads, self.head_dim]], axis=0)
        q, k, v = tf.unstack(tf.reshape(qkv, shape), axis=-3)
        if x.shape.rank == 3:  # [B, L, n, e] -> [B, n, L, e]
            return [tf.transpose(t, [0, 2, 1, 3]) for t in (q, k, v)]
        return q, k, v  # [B, n, e]

    def call(self, x):
        q, k, v = self.project(x)
        length = tf.shape(x)[1]
        mask = tf.range(length)[:, None] >= tf.range(length)[None, :]
        out = tf.transpose(attend(q, k, v, mask), [0, 2, 1, 3])  # [B, L, n, e]
        return self.out(tf.reshape(out, tf.shape(x)))

    def step(self, x_t, keys, values, t):
        q, k, v = self.project(x_t)
        rows = tf.range(tf.shape(keys)[2])[None, :]
        at_t = tf.equal(rows, t[:, None])[:, None, :, None]  # [B, 1, d, 1]
        keys = tf.where(at_t, k[:, :, None, :], keys)
        values = tf.where(at_t, v[:, :, None, :], values)
        mask = (rows <= t[:, None])[:, None, None, :]  # [B, 1, 1, d]
        out = attend(q[:, :, None, :], keys, values, mask)[:, :, 0]  # [B, n, e]
        return self.out(tf.reshape(out, tf.shape(x_t))), keys, values

    def get_config(self):
        return {**super().get_config(), "model_dim": self.model_dim, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class TransformerBlock(keras.layers.Layer):
    """A pre-norm decoder block [2]: z + MHA(LN(z)), then z + MLP(LN(z)) (GELU MLP).

    `call(z)`: `[B, L, F] -> [B, L, F]`; `step(z_t, keys, values, t)`: one position, with the
    attention caches (`CausalSelfAttention.step`).

    #### References

    [2]: Alec Radford et al. Language Models are Unsupervised Multitask Learners. OpenAI, 2019.
    """

    def __init__(self, model_dim, num_heads, mlp_dim, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.model_dim, self.num_heads = int(model_dim), int(num_heads)
        self.mlp_dim = arm_base.check_int("mlp_dim", mlp_dim)
        self.dropout_rate = arm_base.check_rate("dropout_rate", dropout_rate)
        self.norm_1 = keras.layers.LayerNormalization(name="norm_1")
        self.attention = CausalSelfAttention(model_dim, num_heads, name="attention")
        self.norm_2 = keras.layers.LayerNormalization(name="norm_2")
        self.mlp_in = keras.layers.Dense(self.mlp_dim, activation="gelu", name="mlp_in")
        self.mlp_out = keras.layers.Dense(self.model_dim, name="mlp_out")
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def build(self, input_shape):
        for layer in (self.norm_1, self.attention, self.norm_2, self.mlp_in):
            layer.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def mlp(self, z, training=False):
        return z + self.dropout(self.mlp_out(self.mlp_in(self.norm_2(z))), training=training)

    def call(self, z, training=False):
        z = z + self.dropout(self.attention(self.norm_1(z)), training=training)
        return self.mlp(z, training)

    def step(self, z_t, keys, values, t):
        attended, keys, values = self.attention.step(self.norm_1(z_t), keys, values, t)
        return self.mlp(z_t + attended), keys, values

    def get_config(self):
        return {
            **super().get_config(),
            "model_dim": self.model_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
        }


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class SequenceEmbedding(keras.layers.Layer):
    """Token embeddings shifted one step right (a learned start vector first) plus learned
    position embeddings: row i embeds x_{i-1} at position i, so nothing sees x_i at i.

    `call(x_onehot)`: `[B, d, K] -> [B, d, F]`; `at(t, previous_onehot)`: row t_b of each example,
    t int32 `[B]`, from the one-hot `[B, K]` of x_{t-1} (ignored where t = 0) -> `[B, F]`.
    """

    def __init__(self, length, num_categories, model_dim, **kwargs):
        super().__init__(**kwargs)
        self.length, self.num_categories = int(length), int(num_categories)
        self.model_dim = int(model_dim)

    def build(self, input_shape=None):
        init = keras.initializers.RandomNormal(stddev=0.02)
        k, f = self.num_categories, self.model_dim
        self.tokens = self.add_weight(name="tokens", shape=(k, f), initializer=init)
        self.start = self.add_weight(name="start", shape=(f,), initializer=init)
        self.positions = self.add_weight(name="positions", shape=(self.length, f), initializer=init)

    def call(self, x_onehot):
        tokens = tf.einsum("bdk,kf->bdf", x_onehot, self.tokens)
        return arm_base.right_shift_sequence(tokens, self.start) + self.positions

    def at(self, t, previous_onehot):
        # Outside __call__ nothing is autocast: compute in the compute dtype, as `call` does.
        tokens, start, positions = (
            tf.cast(w, self.compute_dtype) for w in (self.tokens, self.start, self.positions)
        )
        previous = tf.cast(previous_onehot, self.compute_dtype)
        token = tf.where((t > 0)[:, None], tf.matmul(previous, tokens), start[None, :])
        return token + tf.gather(positions, t)

    def get_config(self):
        return {
            **super().get_config(),
            "length": self.length,
            "num_categories": self.num_categories,
            "model_dim": self.model_dim,
        }


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class Transformer(arm_base.FlatARM):
    """Decoder-only Transformer ARM with learned positions (see the module docstring).

    Args:
      event_shape: `(L,)` (e.g. characters, K = the vocabulary size), `(L, C)` or `(H, W, C)`;
        flattened in raster order.
      num_categories: K >= 2.
      model_dim: width F of the residual stream (config field `filters`).
      num_layers: decoder blocks >= 1.
      num_heads: attention heads; must divide model_dim.
      mlp_dim: hidden units of each block's MLP (default 4 * model_dim).
      dropout_rate: dropout on each residual branch in training.

    Call: `logits, h = model(x)`, x int `[B, *event_shape]` -> logits `[B, *event_shape, K]`,
    h `[B, *spatial, model_dim]` (`tfps.models.arm_base.FlatARM`).

    #### References

    [1]: Ashish Vaswani et al. Attention Is All You Need. In NeurIPS, 2017.
    """

    ARCH = ARCH

    def __init__(
        self,
        event_shape,
        num_categories,
        model_dim=64,
        num_layers=2,
        num_heads=4,
        mlp_dim=None,
        dropout_rate=0.0,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, **kwargs)
        self.model_dim = arm_base.check_int("model_dim", model_dim)
        self.num_layers = arm_base.check_int("num_layers", num_layers)
        self.num_heads = arm_base.check_int("num_heads", num_heads)
        self.mlp_dim = arm_base.check_int("mlp_dim", mlp_dim or 4 * self.model_dim)
        self.dropout_rate = arm_base.check_rate("dropout_rate", dropout_rate)
        f = self.model_dim
        self.embedding = SequenceEmbedding(
            self.num_variables, self.num_categories, f, name="embedding"
        )
        for i in range(self.num_layers):  # direct attributes: tracked by tf.train.Checkpoint
            block = TransformerBlock(
                f, self.num_heads, self.mlp_dim, self.dropout_rate, name=f"block_{i}"
            )
            setattr(self, f"block_{i}", block)
        self.final_norm = keras.layers.LayerNormalization(name="final_norm")
        self.out = keras.layers.Dense(self.num_categories, name="out")
        self.build_weights()

    @property
    def representation_channels(self):
        return self.model_dim

    def blocks(self):
        return [getattr(self, f"block_{i}") for i in range(self.num_layers)]

    def sequence_call(self, x_onehot, training=False):
        z = self.embedding(x_onehot)
        for block in self.blocks():
            z = block(z, training=training)
        h = self.final_norm(z)
        return self.out(h), h

    def empty_caches(self, batch):
        """Zero key/value caches for `batch` examples: per layer `(keys, values)`, each
        `[batch, heads, d, head_dim]`."""
        shape = [batch, self.num_heads, self.num_variables, self.model_dim // self.num_heads]
        cache = tf.zeros(shape, self.compute_dtype)
        return tuple((cache, cache) for _ in range(self.num_layers))

    def position_step(self, t, previous_onehot, caches):
        """The network at one position per example, from the key/value caches.

        Args:
          t: int32 `[B]`, the position of each example.
          previous_onehot: `[B, K]`, the one-hot of x at t - 1 (ignored where t = 0).
          caches: per layer `(keys, values)` (`empty_caches`), valid at positions < t.
        Returns:
          `(logits float32 [B, K], h [B, model_dim], caches)`: the logits and representation at
          t, which depend on x_<t only, and the caches with position t written.
        """
        z = self.embedding.at(t, previous_onehot)
        written = []
        for block, (keys, values) in zip(self.blocks(), caches):
            z, keys, values = block.step(z, keys, values, t)
            written.append((keys, values))
        h = self.final_norm(z)
        return tf.cast(self.out(h), tf.float32), h, tuple(written)

    def cached_ancestral_arm(self):
        """The ARM of the sampling method `ancestral_cached` (`tfps.sampling.incremental`): a
        `tfps.sampling.kv_cache.KeyValueArm` of this model."""
        return kv_cache.KeyValueArm(self)

    def options(self):
        return {
            "model_dim": self.model_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
        }
