"""In-graph checks of a SavedModel's inputs, derived from the contract table
(`tfps.serving.contract`).

Every input is declared with unknown shape; `checked_inputs` returns each input behind the checks
of its kind (`Port.kind`: seed, count, duration, method, batch, values), so that a bad input fails
with an InvalidArgumentError naming the problem, whichever client calls: wrong rank or shape,
values outside [0, K), NaN or infinite noise, a count < 1, a time budget that is not finite and
> 0, an unknown method, a seed outside the int32 range, evidence whose batch or mask does not
match the noise. The checks run in the signature's own graph, before any (XLA-compiled) sampling
loop, so they hold under `jit_compile` too.
"""

import tensorflow as tf

from tfps.serving import contract

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _shape_string(t):
    """`[2, 4, 4]`: the run-time shape of `t` as a string tensor (for error messages)."""
    dims = tf.strings.reduce_join(
        tf.strings.as_string(tf.shape(t, out_type=tf.int64)), separator=", "
    )
    return tf.strings.join(["[", dims, "]"])


def _require(ok, *message, name="check"):
    """An Assert op raising InvalidArgumentError with the joined `message` unless `ok`."""
    parts = [m if isinstance(m, tf.Tensor) else tf.constant(str(m)) for m in message]
    return tf.debugging.Assert(ok, [tf.strings.join(parts)], summarize=1, name=name)


def _after(checks, t):
    """`t`, usable only once every check in `checks` has passed."""
    with tf.control_dependencies(checks):
        return tf.identity(t)


def _check_batch(t, port, sizes):
    """Requires `t` to have shape `[B, *tail]` of `port` with B >= min_batch, whatever its rank."""
    tail = contract.concrete(port.shape[1:], sizes)
    rank = len(tail) + 1
    shape = tf.shape(t, out_type=tf.int64)
    # Padded to the expected rank so that comparing a wrong rank does not fail on its own.
    padded = tf.concat([shape, tf.fill([rank], tf.constant(-1, tf.int64))], axis=0)[:rank]
    ok = (
        tf.equal(tf.size(shape), rank)
        & tf.reduce_all(tf.equal(padded[1:], tail))
        & (padded[0] >= port.min_batch)
    )
    expected = ", ".join([f"batch{' >= 1' if port.min_batch else ''}"] + [str(s) for s in tail])
    description = ", ".join(contract.axis_names(port.shape, sizes))
    return _require(
        ok,
        f"{port.name} must have shape [{expected}] ({description}), got ",
        _shape_string(t),
        name=f"check_{port.name}_shape",
    )


def _check_scalar(t, name):
    return _require(
        tf.equal(tf.rank(t), 0),
        f"{name} must be a scalar, got shape ",
        _shape_string(t),
        name=f"check_{name}_shape",
    )


def _check_range(x, name, num_categories):
    """Requires all values of int `x` in [0, K)."""
    lo = tf.reduce_min(x)
    hi = tf.reduce_max(x)
    ok = tf.equal(tf.size(x), 0) | ((lo >= 0) & (hi < num_categories))
    return _require(
        ok,
        f"{name} values must lie in [0, {num_categories}), found values in [",
        tf.strings.as_string(lo),
        ", ",
        tf.strings.as_string(hi),
        "]",
        name=f"check_{name}_range",
    )


def _checked_seed(seed, port, sizes, methods):
    """int64 `[2]` in the int32 range -> the int32 pair that `tfps.sampling.noise.as_seed` makes."""
    seed = _after(
        [
            _require(
                tf.equal(tf.rank(seed), 1) & tf.equal(tf.size(seed), 2),
                "seed must have shape [2], got ",
                _shape_string(seed),
                name="check_seed_shape",
            )
        ],
        seed,
    )
    seed = tf.reshape(seed, [2])
    in_range = _require(
        tf.reduce_all((seed >= _INT32_MIN) & (seed <= _INT32_MAX)),
        f"seed values must lie in the int32 range [{_INT32_MIN}, {_INT32_MAX}], got [",
        tf.strings.reduce_join(tf.strings.as_string(seed), separator=", "),
        "]",
        name="check_seed_range",
    )
    return tf.cast(_after([in_range], seed), tf.int32)


def _checked_scalar(t, port, ok, requirement):
    """`t` as a scalar, usable once it is one and `ok(t)` holds (else "<name> must be
    <requirement>, got <value>")."""
    name = port.name
    t = tf.reshape(_after([_check_scalar(t, name)], t), [])
    return _after(
        [
            _require(
                ok(t),
                f"{name} must be {requirement}, got ",
                tf.strings.as_string(t),
                name=f"check_{name}_range",
            )
        ],
        t,
    )


def _checked_count(count, port, sizes, methods):
    """An int32 scalar >= 1 (batch_size, num_samples, slots, max_calls)."""
    return _checked_scalar(count, port, lambda c: c >= 1, ">= 1")


def _checked_duration(duration, port, sizes, methods):
    """A float scalar, finite and > 0 (a time budget)."""
    return _checked_scalar(
        duration, port, lambda t: tf.math.is_finite(t) & (t > 0), "finite and > 0"
    )


def _checked_method(method, port, sizes, methods):
    """A known method name -> its int32 index in `methods`."""
    method = tf.reshape(_after([_check_scalar(method, port.name)], method), [])
    matches = tf.equal(method, tf.constant(methods))
    shown = tf.where(tf.equal(method, ""), "(empty string)", method)
    known = _require(
        tf.reduce_any(matches),
        "unknown sampling method: ",
        shown,
        " (choose one of: " + ", ".join(methods) + ")",
        name="check_method",
    )
    return _after([known], tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32))


def _checked_batch(t, port, sizes, methods):
    checks = [_check_batch(t, port, sizes)]
    if t.dtype.is_floating:  # noise: NaN or an infinity would decide an argmax arbitrarily
        finite = tf.math.is_finite(t)
        bad = tf.size(t, out_type=tf.int64) - tf.math.count_nonzero(finite, dtype=tf.int64)
        checks.append(
            _require(
                tf.reduce_all(finite),
                f"{port.name} must be finite: found ",
                tf.strings.as_string(bad),
                " NaN or infinite values",
                name=f"check_{port.name}_finite",
            )
        )
    return _after(checks, t)


def _checked_values(t, port, sizes, methods):
    t = _checked_batch(t, port, sizes, methods)
    return _after([_check_range(t, port.name, sizes["K"])], t)


_CHECKS = {
    "seed": _checked_seed,
    "count": _checked_count,
    "duration": _checked_duration,
    "method": _checked_method,
    "batch": _checked_batch,
    "values": _checked_values,
}


def require_complete(accepted_at):
    """An Assert that every variable of a sample was accepted (accepted_at >= 1): a sampling loop
    that ended early (an incremental ARM that breaks its contract) fails instead of returning."""
    missing = tf.math.count_nonzero(accepted_at < 1, dtype=tf.int64)
    return _require(
        tf.equal(missing, 0),
        "the sampling loop ended before accepting every variable: ",
        tf.strings.as_string(missing),
        " variables never accepted",
        name="check_complete",
    )


def _require_same_shape(t, name, reference, reference_name):
    """An Assert that `t` (a mask) has the shape of `reference`, naming both shapes."""
    return _require(
        tf.reduce_all(tf.equal(tf.shape(t), tf.shape(reference))),
        f"{name} must have the shape of {reference_name}: {reference_name} has shape ",
        _shape_string(reference),
        f", {name} ",
        _shape_string(t),
        name=f"check_{name}_shape",
    )


def _check_evidence(noise, evidence, evidence_mask):
    """Evidence has the batch of the noise, the mask the shape of the evidence."""
    return [
        _require(
            tf.reduce_all(tf.equal(tf.shape(evidence), tf.shape(noise)[:-1])),
            "evidence must have the batch size of noise: noise has shape ",
            _shape_string(noise),
            ", evidence ",
            _shape_string(evidence),
            name="check_evidence_batch",
        ),
        _require_same_shape(evidence_mask, "evidence_mask", evidence, "evidence"),
    ]


def _check_visible(x, visible):
    """The mask has the shape of x and leaves, in every example, something visible and something
    occluded."""
    flat = tf.reshape(visible, [tf.shape(visible)[0], -1])
    checks = [_require_same_shape(visible, "visible", x, "x")]
    for what, bad in (
        ("nothing occluded", tf.reduce_all(flat, axis=1)),
        ("nothing visible", ~tf.reduce_any(flat, axis=1)),
    ):
        checks.append(
            _require(
                ~tf.reduce_any(bad),
                f"the occlusion mask leaves {what} in example ",
                tf.strings.as_string(tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)),
                ": inpainting needs some visible and some occluded variables",
                name="check_visible_" + what.replace(" ", "_"),
            )
        )
    return checks


def checked_inputs(name, values, event_shape, num_categories, methods):
    """The inputs of signature `name`, each usable only once its checks have passed.

    Args:
      name: a signature of `tfps.serving.contract.TABLE`.
      values: `{input name: tensor}`.
      event_shape, num_categories, methods: of the served model.

    Returns:
      `{input name: tensor}`: `seed` as the int32 pair, counts as int32 scalars, `method` as its
      int32 index in `methods`, the others as given.
    """
    sizes = contract.sizes_of(event_shape, num_categories, len(methods))
    checked = {
        p.name: _CHECKS[p.kind](values[p.name], p, sizes, tuple(methods))
        for p in contract.BY_NAME[name].inputs
    }
    if "evidence" in checked:
        relations = _check_evidence(checked["noise"], checked["evidence"], checked["evidence_mask"])
        checked.update(
            {k: _after(relations, checked[k]) for k in ("noise", "evidence", "evidence_mask")}
        )
    if "visible" in checked:
        # After the shape checks: the per-example reduction needs the mask's rank.
        relations = _check_visible(checked["x"], checked["visible"])
        checked.update({k: _after(relations, checked[k]) for k in ("x", "visible")})
    return checked
