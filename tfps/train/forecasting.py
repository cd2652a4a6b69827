"""Training and watching learned forecasting [1, sec. 2.4]: the heads' logits, the KL objective
(eq. 9) and how often each forecaster agrees with the ARM on data [1, Appendix B].

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

import tensorflow as tf

from tfps.sampling import noise as noise_lib


def head_logits(heads, x, h, noise):
    """The heads' logits `[B, H, W, T, C, K]`: from h (shared) or from x and noise (unshared)."""
    if heads.shares_representation:
        return heads(h)
    return heads(x, noise)


def _by_target(logits):
    """`[B, H, W, T, C, K]` -> `[B, T, d, K]` indexed by the valid-prefix length i - 1 = a*C + r."""
    shape = tf.shape(logits)
    flat = tf.reshape(logits, tf.concat([shape[:1], [shape[1] * shape[2]], shape[3:]], axis=0))
    flat = tf.transpose(flat, [0, 2, 1, 3, 4])  # [B, T, HW, C, K]
    return tf.reshape(flat, tf.concat([shape[:1], shape[3:4], [-1], shape[5:]], axis=0))


def forecast_kl(logits, arm_logits):
    """Eq. 9 per module: `[T]` mean over i and the batch of, in bits,

        KL[P_ARM(x_{i+t} | x_<i+t) || P_F^(t)(x_{i+t} | h_<i)],   1 <= i, i + t < d,

    with the ARM side detached (gradients reach only P_F, and through it h). `logits`: the heads'
    `[B, H, W, T, C, K]`; `arm_logits`: the ARM's `[B, H, W, C, K]`. Positions are raster-then-
    channel; entry j = i - 1 of module t forecasts variable j + 1 + t (`tfps.heads.ForecastHeads`).
    """
    steps = logits.shape[3]
    forecasts = tf.nn.log_softmax(_by_target(logits), axis=-1)  # [B, T, d, K]
    shape = tf.shape(arm_logits)
    arm = tf.reshape(arm_logits, tf.concat([shape[:1], [-1], shape[4:]], axis=0))
    arm = tf.stop_gradient(tf.nn.log_softmax(arm, axis=-1))  # [B, d, K]
    d = tf.shape(arm)[1]
    kls = []
    for t in range(steps):
        target = arm[:, 1 + t :]
        forecast = forecasts[:, t, : d - 1 - t]
        kls.append(tf.reduce_mean(tf.reduce_sum(tf.exp(target) * (target - forecast), axis=-1)))
    return tf.stack(kls) / tf.math.log(2.0)


def learned_accuracy(logits, target, noise):
    """`[T]`: fraction of (example, i) with argmax(mu~_{i,t} + eps_{i+t}) == target_{i+t}.

    `logits` `[B, H, W, T, C, K]`; `target` int `[B, H, W, C]`, the ARM's reparametrized output
    g(x, eps) (x itself under posterior noise); `noise` `[B, H, W, C, K]`. Every valid-prefix
    length 1 <= i < d - t counts once: the forecast the sampler would make there.
    """
    steps = logits.shape[3]
    by_target = _by_target(logits)
    batch = tf.shape(target)[0]
    target = tf.reshape(target, [batch, -1])
    noise = tf.reshape(noise, [batch, tf.shape(target)[1], -1])
    d = tf.shape(target)[1]
    accuracies = []
    for t in range(steps):
        forecast = tf.argmax(
            by_target[:, t, : d - 1 - t] + noise[:, 1 + t :], axis=-1, output_type=tf.int32
        )
        accuracies.append(
            tf.reduce_mean(tf.cast(tf.equal(forecast, target[:, 1 + t :]), tf.float32))
        )
    return tf.stack(accuracies)


def fixed_point_accuracy(arm, x, arm_logits, noise, steps, seed):
    """`[steps]`: how often fixed-point iteration's forecast is right, after one wrong input.

    The situation fpi forecasts in: the previous ARM call had a correct input before position
    j = i - 1 and a wrong forecast at j. For each example a position j is drawn uniformly from
    [0, d - 2], x_j is replaced by its runner-up value argmax_{c != x_j}(mu_jc + eps_jc) (for
    K = 2, the only wrong value), and the ARM runs once on that input; fpi's forecast for
    x_{i+t} is that call's output g_{i+t}. Returns the fraction of examples (with i + t < d)
    where it equals the target g(x, eps)_{i+t} (x under posterior noise). For t = 0 this is
    exactly fpi's situation; for t > 0 it is optimistic, as the true input after j stays in place.

    Args:
      arm: `x -> (logits, h)` in inference mode.
      x: int `[B, H, W, C]` with `g(x, eps) = x` (posterior noise); `arm_logits` = arm(x)'s logits.
      noise: `[B, H, W, C, K]`. steps: how many t. seed: stateless seed for j.
    """
    batch = tf.shape(x)[0]
    image_shape = tf.shape(x)[1:]
    flat = tf.reshape(tf.cast(x, tf.int32), [batch, -1])
    d = tf.shape(flat)[1]
    k = tf.shape(noise)[-1]
    perturbed = tf.reshape(arm_logits + noise, [batch, d, k])
    wrong = tf.random.stateless_uniform([batch], noise_lib.as_seed(seed), 0, d - 1, tf.int32)
    at_wrong = tf.gather(perturbed, wrong, batch_dims=1)  # [B, K]
    own = tf.one_hot(tf.gather(flat, wrong, batch_dims=1), k, on_value=True, off_value=False)
    runner_up = tf.argmax(
        tf.where(own, tf.fill(tf.shape(at_wrong), -float("inf")), at_wrong),
        axis=-1,
        output_type=tf.int32,
    )
    corrupted = tf.where(tf.equal(tf.range(d)[None, :], wrong[:, None]), runner_up[:, None], flat)
    logits, _ = arm(tf.reshape(corrupted, tf.concat([[batch], image_shape], axis=0)))
    output = tf.reshape(tf.argmax(logits + noise, axis=-1, output_type=tf.int32), [batch, d])
    accuracies = []
    for t in range(steps):
        position = wrong + 1 + t
        valid = tf.cast(position < d, tf.float32)
        position = tf.minimum(position, d - 1)
        right = tf.cast(
            tf.equal(
                tf.gather(output, position, batch_dims=1), tf.gather(flat, position, batch_dims=1)
            ),
            tf.float32,
        )
        accuracies.append(tf.reduce_sum(right * valid) / tf.maximum(tf.reduce_sum(valid), 1.0))
    return tf.stack(accuracies)


def forecast_accuracy(model, heads, x, seed, steps=None):
    """What the user watches during training: `{name: accuracy}` on a batch of data x.

    Noise eps ~ p(eps | x) is exact posterior noise (`tfps.noise.posterior_gumbel_noise`), so the
    ARM's reparametrized output g(x, eps) is x itself and (x, eps) is distributed as a sample with
    its noise ([1, eq. 12], when the model fits the data). Keys: `learned_t{t}` per module
    (`learned_accuracy`), `learned` their mean, `fpi_t{t}` and `fpi` the same for fixed-point
    iteration (`fixed_point_accuracy`), over `steps` (default the heads' T, or 1 without heads).
    """
    seed = noise_lib.as_seed(seed)
    noise_seed, position_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    x = tf.cast(x, tf.int32)
    arm_logits, h = model(x, training=False)
    noise = noise_lib.posterior_gumbel_noise(arm_logits, x, noise_seed)
    steps = steps or (heads.steps if heads is not None else 1)
    results = {}
    if heads is not None:
        learned = learned_accuracy(head_logits(heads, x, h, noise), x, noise)
        results.update({f"learned_t{t}": learned[t] for t in range(heads.steps)})
        results["learned"] = tf.reduce_mean(learned)
    fpi = fixed_point_accuracy(
        lambda inputs: model(inputs, training=False), x, arm_logits, noise, steps, position_seed
    )
    results.update({f"fpi_t{t}": fpi[t] for t in range(steps)})
    results["fpi"] = tf.reduce_mean(fpi)
    return results
