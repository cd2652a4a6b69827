"""Independent reference implementations the tests compare the library against.

They are deliberately naive (Python loops over positions, one ARM call each, argmax in numpy), so
they share no code path with the `tf.while_loop` sampler they check. The ARM call itself is the
model's, traced once per model by `tf.function` (`logits_of`): an eager call of a Keras model
costs its layers' Python dispatch on every one of the d calls, which made the oracles the slowest
part of the suite.
"""

import weakref

import numpy as np
import tensorflow as tf

_COMPILED = weakref.WeakKeyDictionary()


def logits_of(model, x):
    """`model(x, training=False)[0]` (the logits) through a `tf.function` kept per model."""
    try:
        call = _COMPILED.get(model)
    except TypeError:  # not weakly referable: call it as it is
        return model(tf.constant(x), training=False)[0]
    if call is None:
        call = tf.function(lambda x: model(x, training=False)[0])
        _COMPILED[model] = call
    return call(tf.constant(x))


def ancestral_reference(model, noise, evidence=None, evidence_mask=None):
    """Ancestral Gumbel-max sampling (eq. 2 and 5 of Wiggers & Hoogeboom, ICML 2020), one ARM
    call per free variable.

    x_i = evidence_i where observed, else argmax_c(logits_i(x_<i) + eps_i) in raster-then-channel
    order. Returns int32 `[B, H, W, C]`.
    """
    noise = np.asarray(noise)
    batch, k = noise.shape[0], noise.shape[-1]
    shape = noise.shape[:-1]
    d = int(np.prod(shape[1:]))
    flat_noise = noise.reshape(batch, d, k)
    x = np.zeros((batch, d), np.int32)
    observed = (
        np.zeros((batch, d), bool)
        if evidence_mask is None
        else np.asarray(evidence_mask).reshape(batch, d)
    )
    values = (
        np.zeros((batch, d), np.int32)
        if evidence is None
        else np.asarray(evidence).reshape(batch, d)
    )
    x[observed] = values[observed]
    for i in range(d):
        if observed[:, i].all():
            continue
        logits = logits_of(model, x.reshape(shape)).numpy()
        logits = logits.reshape(batch, d, k)
        drawn = np.argmax(logits[:, i] + flat_noise[:, i], axis=-1)
        x[:, i] = np.where(observed[:, i], x[:, i], drawn)
    return x.reshape(shape)


def reparametrized_output(model, x, noise):
    """g(x, eps) = argmax(logits(x) + eps): the map whose fixed point is the sample (eq. 8)."""
    logits = logits_of(model, np.asarray(x, np.int32))
    return tf.argmax(logits + noise, axis=-1, output_type=tf.int32).numpy()


def receptive_field(layer, shape, out_pos):
    """Input positions (row, col) whose perturbation changes the output at `out_pos`."""
    x = tf.Variable(tf.random.stateless_normal((1,) + shape, seed=(0, 1)))
    with tf.GradientTape() as tape:
        y = layer(x)
        target = tf.reduce_sum(y[0, out_pos[0], out_pos[1]])
    grad = tape.gradient(target, x).numpy()[0]
    return {tuple(p) for p in np.argwhere(np.abs(grad).sum(-1) > 0)}


def assert_argmax_matches(actual, scores, tolerance=1e-5):
    """`actual == argmax(scores, -1)` wherever the argmax is clear: where the best two scores are
    within `tolerance`, `actual` may be either of the near-best (the same scores computed by
    another kernel or over another batch shape may round the other way).

    A wrong choice on a clear margin fails; so does a choice outside the near-best.
    """
    actual, scores = np.asarray(actual), np.asarray(scores, np.float64)
    best = scores.max(axis=-1)
    chosen = np.take_along_axis(scores, actual[..., None], axis=-1)[..., 0]
    wrong = best - chosen > tolerance
    assert not wrong.any(), (
        f"{int(wrong.sum())} of {wrong.size} argmaxes wrong beyond {tolerance}: "
        f"first at {np.argwhere(wrong)[0]}, chose {chosen[wrong][0]} against {best[wrong][0]}"
    )


def ancestral_in_ordering(model, index, noise, evidence=None, mask=None):
    """The ancestral sample in ordering `model.orderings[index]` of a family of orderings: an
    eager loop filling x_pi[t] = argmax(logits_pi[t](x) + eps_pi[t]) for t = 0 .. d-1 with the
    model in x layout (no ordered view, no permute); observed values (evidence where mask) are
    kept."""
    noise = np.asarray(noise)
    batch, k = noise.shape[0], noise.shape[-1]
    d = model.num_variables
    x, eps = np.zeros((batch, d), np.int32), noise.reshape(batch, d, k)
    observed = np.zeros((batch, d), bool) if mask is None else np.reshape(mask, (batch, d))
    if evidence is not None:
        x = np.where(observed, np.reshape(evidence, (batch, d)), 0).astype(np.int32)
    for j in model.orderings[index].permutation:
        x_event = tf.constant(x.reshape((batch,) + model.event_shape))
        logits = model(x_event, ordering_index=index)[0].numpy().reshape(batch, d, k)
        drawn = np.argmax(logits[:, j] + eps[:, j], axis=-1)
        x[:, j] = np.where(observed[:, j], x[:, j], drawn)
    return x.reshape((batch,) + model.event_shape)


def frechet_distance(a, b):
    """The Frechet distance of two feature sets `[N, F]` by its formula in numpy:
    ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 sum_i sqrt(lambda_i(S_a S_b)), the eigenvalues of a
    product of covariances (real and >= 0; rounding below 0 clipped) in place of a matrix root."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    roots = np.sqrt(np.clip(np.real(np.linalg.eigvals(cov_a @ cov_b)), 0.0, None))
    mean = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
    return float(mean + np.trace(cov_a) + np.trace(cov_b) - 2.0 * roots.sum())
