"""The eager input checks of `tfps.sampling.PredictiveSampler`: noise and evidence.

Each bad input gets one ValueError naming the problem (shape, dtype, range).
"""

import tensorflow as tf


def check_noise(noise, event_shape):
    """Noise must be floating `[B] + event_shape` (`(H, W, C, K)`) with B >= 1; returns it as
    float32."""
    noise = tf.convert_to_tensor(noise)
    expected = tuple(event_shape)
    if not noise.dtype.is_floating:
        raise ValueError(f"noise must be a float tensor, got dtype {noise.dtype.name}")
    if noise.shape.rank != 5 or tuple(noise.shape[1:]) != expected:
        raise ValueError(
            f"noise must have shape [batch, {', '.join(map(str, expected))}] "
            f"(batch, height, width, channels, categories), "
            f"got {noise.shape.as_list()}"
        )
    if noise.shape[0] is not None and noise.shape[0] < 1:
        raise ValueError("noise must hold at least one example (batch size >= 1)")
    return tf.cast(noise, tf.float32)


def check_evidence(evidence, evidence_mask, batch, image_shape, num_categories):
    """Validated `(evidence int32, evidence_mask bool)`, both `[batch, H, W, C]`; zeros and
    all-False (nothing observed) when both are None."""
    from tfps.pixelcnn import validate_images  # local: keeps sampling usable with any ARM

    shape = (batch,) + tuple(image_shape)
    if evidence is None and evidence_mask is None:
        return tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool)
    if evidence is None or evidence_mask is None:
        raise ValueError("evidence and evidence_mask must be given together")
    evidence = validate_images(evidence, image_shape, num_categories, "evidence")
    evidence_mask = tf.convert_to_tensor(evidence_mask)
    if evidence_mask.dtype != tf.bool:
        raise ValueError(f"evidence_mask must be bool, got dtype {evidence_mask.dtype.name}")
    if tuple(evidence.shape) != shape or tuple(evidence_mask.shape) != shape:
        raise ValueError(
            f"evidence and evidence_mask must have shape {list(shape)}, got "
            f"{evidence.shape.as_list()} and {evidence_mask.shape.as_list()}"
        )
    return evidence, evidence_mask
