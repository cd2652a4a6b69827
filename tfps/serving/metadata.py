"""The metadata of an export: what it serves, in which order, made by what (`serving_metadata`).

Stored twice in every SavedModel (`tfps.serving.module.ServingModule`): the asset
`assets/tfps_metadata.json` and the `metadata` signature, both readable without tfps
(docs/serving.md).
"""

import datetime
import importlib.metadata

import numpy as np
import tensorflow as tf

from tfps.sampling import events, ordered_view, protocol
from tfps.serving import contract


def tfps_version():
    """The installed tfps package version (recorded in every export)."""
    try:
        return importlib.metadata.version("tfps")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def serving_metadata(model, sampler, decoder=None, extra=None):
    """The metadata of an export: event shape (and its canonical image shape), K, ordering,
    methods, versions, whether the sampling signatures make incremental ARM calls
    (`tfps.serving.incremental_choice`), the contract with concrete shapes, the decoded images of a
    latent ARM, and `extra` (training facts, name, the full record of the incremental choice)."""
    event_shape = protocol.event_shape_of(model)
    num_categories = int(model.num_categories)
    methods = tuple(sampler.methods)
    decoded_shape = None if decoder is None else tuple(decoder.image_shape)
    anytime = getattr(decoder, "prefix_function", None) is not None
    return {
        "format": contract.FORMAT,
        "image_shape": list(events.canonical_shape(event_shape)),
        "event_shape": list(event_shape),
        "num_categories": num_categories,
        "num_variables": int(np.prod(event_shape)),
        "ordering": sampling_ordering(model),
        "methods": list(methods),
        "jit_compile": bool(getattr(sampler, "jit_compile", False)),
        "incremental": {"used": bool(getattr(sampler, "incremental", False))},
        "sampling_order": _sampling_permutation(model),
        "model": model.model_config() if hasattr(model, "model_config") else None,
        "tfps_version": tfps_version(),
        "tensorflow_version": tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "signatures": contract.concrete_contract(
            event_shape, num_categories, methods, decoded_shape, anytime
        ),
        "anytime": anytime,
        "decoded_images": None
        if decoder is None
        else {
            "image_shape": list(decoder.image_shape),
            "num_levels": int(decoder.num_levels),
            "range": [-1.0, 1.0],
            "to_levels": "round((images + 1) / 2 * (num_levels - 1))",
        },
        **dict(extra or {}),
    }


def _sampling_permutation(model):
    ordering = ordered_view.sampling_order(model)
    return None if ordering is None else ordering.to_config()


def sampling_ordering(model):
    """The metadata's `ordering`: the order in which the sampling signatures generate the
    variables; a family of orderings is sampled in its first ordering (`sampler_for_model`)."""
    ordering = ordered_view.sampling_order(model)
    if ordering is None:
        images = len(protocol.event_shape_of(model)) == 3
        return contract.ORDERING if images else contract.SEQUENCE_ORDERING
    return (
        f"the family's first ordering, {ordering.name or 'a permutation'}: flat raster position "
        f"sampling_order[t] of the {len(ordering)} variables is sampled t-th (the metadata's "
        "sampling_order); noise, evidence and samples stay in raster layout"
    )
