"""The serving contract of a tfps SavedModel, written once as a table (`TABLE`).

Every signature is batch-first; examples are int32 `[B, E...]` with values in [0, K), where
`E...` are the axes of the model's event shape (`tfps.models.arms`): images `[B, H, W, C]` in
raster-then-channel order (variable i = (h * W + w) * C + c, [1, eq. 1]), sequences `[B, L]` or
`[B, L, C]` in raster order. The metadata records the event shape. `TABLE` lists each
signature with its inputs and outputs (name, dtype, shape pattern over the symbols of `SYMBOLS`),
and everything else is derived from it:

- `input_specs`: the `tf.TensorSpec`s each signature is traced with (unknown shapes, see below);
- `tfps.serving.contract_checks.checked_inputs`: the in-graph checks of the inputs, one per input
kind;
- `SIGNATURES`, `SAMPLE_OUTPUTS`: the signature and sampling output names;
- `concrete_contract` / `output_shapes`: the contract with concrete shapes (the `signatures`
  section of the metadata, and the `ensure_shape`s of the outputs);
- `contract_markdown`: the contract as Markdown (docs/serving.md holds its rendering).

Inputs are declared with unknown shape on purpose: the shapes of the table are checked inside the
graph, so a bad input (wrong rank or shape, values outside [0, K), a count < 1, an unknown method,
a seed outside the int32 range) fails with an InvalidArgumentError whose message names the
problem, whichever client calls (TF2 Python, the TF1 session API, TF Serving). Declared static
shapes would be neither enforced by loaded TF2 signatures nor safe to check in-graph (Grappler
folds shape checks against them).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.

[2]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.

[3]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import dataclasses

import tensorflow as tf

from tfps.sampling import events

FORMAT = "tfps.saved_model/1"
ORDERING = (
    "raster-then-channel: images are int32 [B, H, W, C] with values in [0, K); variable "
    "i = (h * W + w) * C + c is sampled after all variables j < i"
)
SEQUENCE_ORDERING = (
    "raster: sequences are int32 [B, L] or [B, L, C] with values in [0, K); variable "
    "i = l * C + c is sampled after all variables j < i"
)
EVENT = "E..."
SYMBOLS = {
    "B": "batch",
    EVENT: "the event's axes: H, W, C (images) or L [, C] (sequences)",
    "R": "event rank",
    "K": "categories",
    "M": "number of methods",
    "H'": "decoded height",
    "W'": "decoded width",
    "C'": "decoded channels",
}


@dataclasses.dataclass(frozen=True)
class Port:
    """One input or output of a signature.

    `shape` is a pattern: ints and symbols of `SYMBOLS`. `kind` (inputs only) selects the
    in-graph check: "seed", "count" (an int scalar >= 1), "duration" (a float scalar, finite
    and > 0), "method", "batch" (the shape of the pattern with at least `min_batch` rows) or
    "values" ("batch", and values in [0, K)).
    `decoded`: an output only ARMs on autoencoder latents have.
    """

    name: str
    dtype: str
    shape: tuple
    kind: str = None
    min_batch: int = 0
    decoded: bool = False
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class Signature:
    """One signature: its key, its inputs in argument order, its outputs and what it does."""

    name: str
    inputs: tuple
    outputs: tuple
    doc: str
    anytime: bool = False  # only in exports of a prior over an ordered code (`ANYTIME_SIGNATURES`)


_IMAGE = ("B", EVENT)
_NOISE = _IMAGE + ("K",)
_METHOD = Port("method", "string", (), "method")
_SEED = Port("seed", "int64", (2,), "seed")
_SLOTS = Port("slots", "int32", (), "count")
_NOISE_IN = Port("noise", "float32", _NOISE, "batch", min_batch=1)
_EVIDENCE = (
    Port("evidence", "int32", _IMAGE, "values", min_batch=1),
    Port("evidence_mask", "bool", _IMAGE, "batch", min_batch=1),
)
_X = Port("x", "int32", _IMAGE, "values")
# The fields of `tfps.sampling.predictive.SampleResult`, then the decoded images.
_SAMPLE_OUTPUTS = (
    Port("samples", "int32", _IMAGE, doc="the samples, values in [0, K)"),
    Port("arm_calls", "int32", (), doc="ARM passes for the whole batch"),
    Port("arm_calls_per_example", "int32", ("B",), doc="ARM passes each sample needed"),
    Port(
        "converged_at",
        "int32",
        _IMAGE,
        doc="the ARM call from which the variable's output never changed",
    ),
    Port("accepted_at", "int32", _IMAGE, doc="the ARM call in which the variable became final"),
    Port("forecast_mistakes", "bool", _IMAGE, doc="where a forecast was wrong"),
    Port("forecasts_checked", "int32", ("B",), doc="forecasts checked per sample"),
    Port(
        "images",
        "float32",
        ("B", "H'", "W'", "C'"),
        decoded=True,
        doc="ARMs on autoencoder latents only: the decoded samples, in [-1, 1] [1, sec. 4.2]",
    ),
)

TABLE = (
    Signature(
        "sample",
        (_SEED, Port("batch_size", "int32", (), "count"), _METHOD),
        _SAMPLE_OUTPUTS,
        "B samples for the Gumbel noise drawn from `seed` as `tfps.sampling.noise.gumbel_noise` "
        "does [1, eq. 5].",
    ),
    Signature(
        "sample_with_noise",
        (_NOISE_IN, _METHOD),
        _SAMPLE_OUTPUTS,
        "The sample for given noise: the fixed point of x = argmax(logits(x) + noise) [1, eq. 8].",
    ),
    Signature(
        "sample_with_evidence",
        (_NOISE_IN,) + _EVIDENCE + (_METHOD,),
        _SAMPLE_OUTPUTS,
        "Inpainting: observed values (`evidence` where `evidence_mask`) are kept.",
    ),
    Signature(
        "sample_many",
        (_SEED, Port("num_samples", "int32", (), "count"), _SLOTS, _METHOD),
        _SAMPLE_OUTPUTS,
        "B = num_samples samples through `slots` batch slots, refilled as samples finish "
        "(`tfps.sampling.slots`); `arm_calls` counts the passes for all of them.",
    ),
    Signature(
        "sample_many_with_evidence",
        (_NOISE_IN,) + _EVIDENCE + (_SLOTS, _METHOD),
        _SAMPLE_OUTPUTS,
        "`sample_many` for given noise and evidence.",
    ),
    Signature(
        "sample_within_budget",
        (
            _SEED,
            Port("batch_size", "int32", (), "count"),
            Port("max_calls", "int32", (), "count"),
            Port("max_milliseconds", "float32", (), "duration"),
            _METHOD,
        ),
        _SAMPLE_OUTPUTS[:-1]
        + (
            Port("num_codes", "int32", ("B",), doc="the codes each sample finished in the budget"),
            Port(
                "images",
                "float32",
                ("B", "H'", "W'", "C'"),
                decoded=True,
                doc="the decoding of the finished codes, in [-1, 1]",
            ),
        ),
        "Anytime sampling [2]: `sample`'s codes, stopped after `max_calls` ARM calls or "
        "`max_milliseconds` (the first call is always made), the finished prefix decoded; "
        "`samples` are 0 after it.",
        anytime=True,
    ),
    Signature(
        "inpaint",
        (
            _SEED,
            Port("x", "int32", _IMAGE, "values", min_batch=1),
            Port("visible", "bool", _IMAGE, "batch", min_batch=1),
            _METHOD,
        ),
        _SAMPLE_OUTPUTS[:-1]
        + (
            Port(
                "ordering_index",
                "int32",
                ("B",),
                doc="the ordering each example was filled in (0 for an ARM of one ordering)",
            ),
            Port(
                "exact",
                "bool",
                ("B",),
                doc="whether every visible variable precedes every occluded one in it",
            ),
        ),
        "Inpainting [3]: the variables of x where `visible` is false sampled for the noise drawn "
        "from `seed` (as `sample`), the visible ones kept; a family of orderings fills each "
        "example in the ordering that generates the most visible variables before the occluded "
        "ones (`tfps.sampling.inpainting`), any other ARM in its own order.",
    ),
    Signature("logits", (_X,), (Port("logits", "float32", _NOISE),), "The ARM's logits."),
    Signature(
        "log_prob",
        (_X,),
        (Port("log_prob", "float32", ("B",)), Port("bits_per_dim", "float32", ("B",))),
        "log p(x) in nats and in bits per dimension.",
    ),
    Signature(
        "metadata",
        (),
        (
            Port("json", "string", ()),
            Port("image_shape", "int32", (3,)),
            Port("event_shape", "int32", ("R",)),
            Port("num_categories", "int32", ()),
            Port("methods", "string", ("M",)),
        ),
        "The metadata JSON (also the asset `assets/tfps_metadata.json`).",
    ),
)
ALIASES = {"serving_default": "sample"}
BY_NAME = {signature.name: signature for signature in TABLE}
SIGNATURES = tuple(ALIASES) + tuple(s.name for s in TABLE if not s.anytime)
ANYTIME_SIGNATURES = tuple(s.name for s in TABLE if s.anytime)
SAMPLE_OUTPUTS = tuple(p.name for p in BY_NAME["sample"].outputs if not p.decoded)
# Signatures added after the format's first exports: a loader does not require them.
ADDED_LATER = ("inpaint",)


# ----------------------------------------------------------------------------- shapes


def sizes_of(event_shape, num_categories, num_methods=None, decoded_shape=None):
    """`{symbol: size}` of a served model (None for the batch B and, without methods, M); the
    event symbol `E...` maps to the tuple of the event's sizes."""
    sizes = {EVENT: tuple(int(s) for s in event_shape), "R": len(event_shape)}
    sizes.update(
        B=None,
        K=int(num_categories),
        M=None if num_methods is None else int(num_methods),
    )
    if decoded_shape is not None:
        sizes.update(zip(("H'", "W'", "C'"), (int(s) for s in decoded_shape)))
    return sizes


def concrete(pattern, sizes):
    """A shape pattern with sizes: symbols replaced, `E...` expanded into the event's axes."""
    out = []
    for symbol in pattern:
        if symbol == EVENT:
            out.extend(sizes[EVENT])
        else:
            out.append(sizes[symbol] if isinstance(symbol, str) else symbol)
    return out


def axis_names(pattern, sizes):
    """The names of a pattern's axes, `E...` expanded (e.g. batch, length, categories)."""
    names = []
    for symbol in pattern:
        if symbol == EVENT:
            names.extend(events.axis_names(sizes[EVENT]))
        else:
            names.append(SYMBOLS[symbol])
    return names


def _concrete(port, sizes):
    return concrete(port.shape, sizes)


def _outputs(name, decoded):
    return [p for p in BY_NAME[ALIASES.get(name, name)].outputs if decoded or not p.decoded]


def output_shapes(name, event_shape, num_categories, decoded_shape=None):
    """`{output: shape}` of signature `name` with None for the batch (for `tf.ensure_shape`)."""
    sizes = sizes_of(event_shape, num_categories, decoded_shape=decoded_shape)
    return {p.name: _concrete(p, sizes) for p in _outputs(name, decoded_shape is not None)}


def signature_names(anytime=False):
    """The signature keys of an export; `anytime`: a prior over an ordered code's, which adds
    `ANYTIME_SIGNATURES`."""
    return SIGNATURES + (ANYTIME_SIGNATURES if anytime else ())


def concrete_contract(event_shape, num_categories, methods, decoded_shape=None, anytime=False):
    """The contract with concrete shapes (None = the batch), as the metadata records it.

    `decoded_shape`: for an ARM on autoencoder latents, the shape of the decoded images; every
    sampling signature then also returns `images` (float32 `[B, H', W', C']` in [-1, 1]).
    `anytime`: the export of a prior over an ordered code (adds `ANYTIME_SIGNATURES`).
    """
    sizes = sizes_of(event_shape, num_categories, len(methods), decoded_shape)

    def as_dict(ports):
        return {p.name: {"dtype": p.dtype, "shape": _concrete(p, sizes)} for p in ports}

    return {
        name: {
            "inputs": as_dict(BY_NAME[ALIASES.get(name, name)].inputs),
            "outputs": as_dict(_outputs(name, decoded_shape is not None)),
        }
        for name in signature_names(anytime)
    }


def input_specs(name):
    """The `tf.TensorSpec`s (unknown shape, named) signature `name` is traced with, in order."""
    return [tf.TensorSpec(None, tf.as_dtype(p.dtype), name=p.name) for p in BY_NAME[name].inputs]


# ----------------------------------------------------------------------------- docs


def _port_text(port):
    shape = ", ".join(str(s) for s in port.shape)
    return f"`{port.name}` {port.dtype} [{shape}]"


def contract_markdown():
    """The contract as a Markdown table (what docs/serving.md shows)."""
    symbols = ", ".join(f"{s} = {meaning}" for s, meaning in SYMBOLS.items())
    sample = BY_NAME["sample"]
    lines = [
        f"Shapes: {symbols}.",
        "",
        "| signature | inputs | outputs | what |",
        "|---|---|---|---|",
    ]
    for signature in TABLE:
        aliases = [a for a, target in ALIASES.items() if target == signature.name]
        name = " = ".join(f"`{n}`" for n in [signature.name] + aliases)
        outputs = (
            "those of `sample`"
            if signature.outputs == sample.outputs and signature is not sample
            else ", ".join(map(_port_text, signature.outputs))
        )
        only = " Exports of a prior over an ordered code only." if signature.anytime else ""
        lines.append(
            f"| {name} | {', '.join(map(_port_text, signature.inputs)) or '-'} | "
            f"{outputs} | {signature.doc}{only} |"
        )
    lines += ["", "Outputs of the sampling signatures:", ""]
    lines += [f"- {_port_text(p)}: {p.doc}" for p in sample.outputs]
    return "\n".join(lines)
