"""SavedModel export of a trained ARM with a fixed serving contract, and loading it back.

An export is a TF Serving style directory `<base>/<version>/` (`<base>` is usually
`exported/<name>`, versions are positive integers, a new export takes max + 1). It needs nothing but
TensorFlow to load: no tfps, no Keras, no TFP. Its signatures, all batch-first, with images int32
`[B, H, W, C]` in raster-then-channel order (variable i = (h * W + w) * C + c, seed 000 eq. 1) and
values in [0, K):

  sample(seed int64 [2], batch_size int32 [], method string [])       (also `serving_default`)
  sample_with_noise(noise float32 [B, H, W, C, K], method string [])
      -> samples int32 [B, H, W, C], arm_calls int32 [] (ARM passes for the batch),
         arm_calls_per_example int32 [B], converged_at int32 [B, H, W, C] (the ARM call from which
         the variable's output never changed), and extra outputs accepted_at int32 [B, H, W, C]
         (the call in which it became final), forecast_mistakes bool [B, H, W, C],
         forecasts_checked int32 [B]  (see `tfps.sampling.SampleResult`)
  logits(x int32 [B, H, W, C]) -> logits float32 [B, H, W, C, K]
  log_prob(x int32 [B, H, W, C]) -> log_prob float32 [B] (nats), bits_per_dim float32 [B]

and beyond the fixed contract, with the same outputs as `sample`:

  sample_with_evidence(noise, evidence int32 [B, H, W, C], evidence_mask bool [B, H, W, C],
                       method)                                       inpainting: observed values kept
  sample_many(seed int64 [2], num_samples int32 [], slots int32 [], method)
  sample_many_with_evidence(noise [N, H, W, C, K], evidence, evidence_mask, slots, method)
      N samples through `slots` batch slots, refilled as samples finish (`tfps.scheduling`);
      arm_calls counts the passes for all N, converged_at / accepted_at count from the call in
      which each sample entered its slot
  metadata() -> json string [], image_shape int32 [3], num_categories int32 [], methods string [M]

`sample` draws the Gumbel noise eps ~ G(0, 1) (eq. 5) from `seed` exactly as
`tfps.noise.gumbel_noise` does, so `sample(seed=[0, s], batch_size=b, method=m)` equals
`sampler.sample_from_seed(s, b, m)` in the library. Every method returns the ancestral sample for
the same noise (the fixed point of x = argmax(logits(x) + eps), eq. 8); methods differ only in
`arm_calls`. The method names are the sampler's (`PredictiveSampler.methods`).

Inputs are declared with unknown shape on purpose: the shapes above are checked inside the graph,
so a bad input (wrong rank or shape, values outside [0, K), batch_size < 1, an unknown method, a
seed outside the int32 range) fails with an InvalidArgumentError whose message names the problem,
whichever client calls (TF2 Python, the TF1 session API, TF Serving). Declared static shapes would
be neither enforced by loaded TF2 signatures nor safe to check in-graph (Grappler folds shape
checks against them).

Metadata (image shape, K, ordering, methods, training dataset and bpd, versions, the contract with
concrete shapes) is stored twice, both readable without tfps: the asset file
`assets/tfps_metadata.json` (plain JSON, no TensorFlow needed) and the `metadata` signature.
"""
import datetime
import functools
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf

from tfps import noise as noise_lib
from tfps import pixelcnn
from tfps import sampling

FORMAT = "tfps.saved_model/1"
METADATA_ASSET = "tfps_metadata.json"
ORDERING = ("raster-then-channel: images are int32 [B, H, W, C] with values in [0, K); variable "
            "i = (h * W + w) * C + c is sampled after all variables j < i")
SAMPLE_OUTPUTS = ("samples", "arm_calls", "arm_calls_per_example", "converged_at",
                  "accepted_at", "forecast_mistakes", "forecasts_checked")
SIGNATURES = ("serving_default", "sample", "sample_with_noise", "sample_with_evidence",
              "sample_many", "sample_many_with_evidence", "logits", "log_prob", "metadata")
_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1
_VERSION_DIR = re.compile(r"^[1-9][0-9]*$")


def tfps_version():
    """The installed tfps package version (recorded in every export)."""
    try:
        return importlib.metadata.version("tfps")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ----------------------------------------------------------------------------- graph checks


def _shape_string(t):
    """`[2, 4, 4]`: the run-time shape of `t` as a string tensor (for error messages)."""
    dims = tf.strings.reduce_join(tf.strings.as_string(tf.shape(t, out_type=tf.int64)),
                                  separator=", ")
    return tf.strings.join(["[", dims, "]"])


def _require(ok, *message, name="check"):
    """An Assert op raising InvalidArgumentError with the joined `message` unless `ok`."""
    parts = [m if isinstance(m, tf.Tensor) else tf.constant(str(m)) for m in message]
    return tf.debugging.Assert(ok, [tf.strings.join(parts)], summarize=1, name=name)


def _check_shape(t, name, tail, description, min_batch):
    """Requires `t` to have shape `[B, *tail]` with B >= min_batch, whatever its rank."""
    rank = len(tail) + 1
    shape = tf.shape(t, out_type=tf.int64)
    # Padded to the expected rank so that comparing a wrong rank does not fail on its own.
    padded = tf.concat([shape, tf.fill([rank], tf.constant(-1, tf.int64))], axis=0)[:rank]
    ok = (tf.equal(tf.size(shape), rank) & tf.reduce_all(tf.equal(padded[1:], list(tail)))
          & (padded[0] >= min_batch))
    expected = ", ".join([f"batch{' >= 1' if min_batch else ''}"] + [str(s) for s in tail])
    return _require(ok, f"{name} must have shape [{expected}] ({description}), got ",
                    _shape_string(t), name=f"check_{name}_shape")


def _check_scalar(t, name):
    return _require(tf.equal(tf.rank(t), 0), f"{name} must be a scalar, got shape ",
                    _shape_string(t), name=f"check_{name}_shape")


def _check_range(x, name, num_categories):
    """Requires all values of int `x` in [0, K)."""
    lo = tf.reduce_min(x)
    hi = tf.reduce_max(x)
    ok = tf.equal(tf.size(x), 0) | ((lo >= 0) & (hi < num_categories))
    return _require(ok, f"{name} values must lie in [0, {num_categories}), found values in [",
                    tf.strings.as_string(lo), ", ", tf.strings.as_string(hi), "]",
                    name=f"check_{name}_range")


def _after(checks, *tensors):
    """`tensors`, usable only once every check in `checks` has passed."""
    with tf.control_dependencies(checks):
        outputs = tuple(tf.identity(t) for t in tensors)
    return outputs if len(outputs) > 1 else outputs[0]


# ----------------------------------------------------------------------------- the module


def _contract(image_shape, num_categories, methods, decoded_shape=None):
    """The serving contract with concrete shapes (None = the batch), written into the metadata.

    `decoded_shape`: for an ARM on autoencoder latents, the shape of the decoded images; every
    sampling signature then also returns `images` (float32 `[B, H, W, C]` in [-1, 1]).
    """
    image = [None, *image_shape]
    noise = [*image, num_categories]
    sample_out = {
        "samples": ("int32", image), "arm_calls": ("int32", []),
        "arm_calls_per_example": ("int32", [None]), "converged_at": ("int32", image),
        "accepted_at": ("int32", image), "forecast_mistakes": ("bool", image),
        "forecasts_checked": ("int32", [None])}
    if decoded_shape is not None:
        sample_out["images"] = ("float32", [None, *decoded_shape])
    method = ("string", [])
    spec = {
        "sample": ({"seed": ("int64", [2]), "batch_size": ("int32", []), "method": method},
                   sample_out),
        "sample_with_noise": ({"noise": ("float32", noise), "method": method}, sample_out),
        "sample_with_evidence": ({"noise": ("float32", noise), "evidence": ("int32", image),
                                  "evidence_mask": ("bool", image), "method": method}, sample_out),
        "sample_many": ({"seed": ("int64", [2]), "num_samples": ("int32", []),
                         "slots": ("int32", []), "method": method}, sample_out),
        "sample_many_with_evidence": ({"noise": ("float32", noise), "evidence": ("int32", image),
                                       "evidence_mask": ("bool", image), "slots": ("int32", []),
                                       "method": method}, sample_out),
        "logits": ({"x": ("int32", image)}, {"logits": ("float32", noise)}),
        "log_prob": ({"x": ("int32", image)}, {"log_prob": ("float32", [None]),
                                                "bits_per_dim": ("float32", [None])}),
        "metadata": ({}, {"json": ("string", []), "image_shape": ("int32", [3]),
                          "num_categories": ("int32", []), "methods": ("string", [len(methods)])}),
    }
    spec["serving_default"] = spec["sample"]
    as_dict = lambda d: {k: {"dtype": v[0], "shape": v[1]} for k, v in d.items()}
    return {name: {"inputs": as_dict(i), "outputs": as_dict(o)} for name, (i, o) in spec.items()}


def arm_function(model):
    """The ARM `x -> (logits, h)` of a Keras model in inference mode, as one `tf.function`.

    Every sampling loop, `logits` and `log_prob` call it, so the SavedModel stores the network
    once instead of once per call site; TensorFlow inlines the calls when it runs the graph.
    """
    spec = tf.TensorSpec((None,) + tuple(int(s) for s in model.image_shape), tf.int32)
    return tf.function(lambda x: model(x, training=False), input_signature=[spec],
                       autograph=False)


class _Untracked:
    """Holds a value out of sight of tf.Module's attribute tracking (so it is not saved)."""

    def __init__(self, value):
        self.value = value


class ServingModule(tf.Module):
    """The object saved as the SavedModel: the ARM, a sampler over it, and the metadata.

    Args:
      model: a `tfps.pixelcnn.PixelCNN` (or a Keras model with `image_shape`, `num_categories`,
        `model_config()` and `model(x, training=False) -> (logits, h)`).
      metadata: JSON-able dict merged into the generated metadata (training facts, name, ...).
      sampler: the `PredictiveSampler` whose methods are exported; its `methods` are the exported
        method names. Default: a sampler over `arm_function(model)`, with `forecasters` and
        `jit_compile`. A sampler of your own should call the ARM through `arm_function(model)`
        too, or the export holds one copy of the network per use (tens of copies).
      forecasters, jit_compile: for the default sampler (see `PredictiveSampler`).
      decoder: for an ARM on autoencoder latents, its `tfps.latent.LatentDecoder`; the sampling
        signatures then also return the decoded `images` (seed 000, section 4.2).

    What is saved is not the Keras model but the `tf.Variable`s the signatures read
    (`served_variables`, gathered when the signatures are traced, so weights of learned forecasters
    come along). Saving the Keras 3 model object instead gives every weight a second variable in
    the SavedModel graph; the TF1 loaders (`saved_model_cli run`, TF Serving) then restore one
    copy while the signatures read the other, and fail with "Could not find variable ...".
    """

    def __init__(self, model, metadata=None, sampler=None, forecasters=None, jit_compile=False,
                 decoder=None):
        super().__init__(name="tfps_serving")
        self._decode = _Untracked(decoder.function) if decoder is not None else None
        self._decoded_shape = tuple(decoder.image_shape) if decoder is not None else None
        self._arm = _Untracked(arm_function(model))
        self._sampler = sampler or sampling.PredictiveSampler(
            self._arm.value, model.image_shape, model.num_categories, forecasters=forecasters,
            jit_compile=jit_compile)
        self._image_shape = tuple(int(s) for s in model.image_shape)
        self._num_categories = int(model.num_categories)
        if (self._sampler.image_shape != self._image_shape
                or self._sampler.num_categories != self._num_categories):
            raise ValueError("sampler and model disagree on the image shape or K")
        self._methods = tuple(self._sampler.methods)
        metadata = {
            "format": FORMAT,
            "image_shape": list(self._image_shape),
            "num_categories": self._num_categories,
            "num_variables": int(np.prod(self._image_shape)),
            "ordering": ORDERING,
            "methods": list(self._methods),
            "jit_compile": bool(getattr(self._sampler, "jit_compile", False)),
            "model": model.model_config() if hasattr(model, "model_config") else None,
            "tfps_version": tfps_version(),
            "tensorflow_version": tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "signatures": _contract(self._image_shape, self._num_categories, self._methods,
                                    self._decoded_shape),
            "decoded_images": None if decoder is None else {
                "image_shape": list(decoder.image_shape), "num_levels": int(decoder.num_levels),
                "range": [-1.0, 1.0],
                "to_levels": "round((images + 1) / 2 * (num_levels - 1))"},
            **dict(metadata or {}),
        }
        # A string, not a dict attribute: tf.Module would track a dict as part of the object graph.
        self.metadata_json = json.dumps(metadata, indent=2, sort_keys=True)
        self._concrete = None

    @property
    def methods(self):
        return self._methods

    @property
    def metadata(self):
        return json.loads(self.metadata_json)

    def signatures(self):
        """`{signature key: concrete function}` for `tf.saved_model.save`.

        The functions are traced here and kept off the module's attributes: as attributes they
        would be saved a second time (saving retraces them in its own context), doubling the size.
        """
        if self._concrete is None:
            method = tf.TensorSpec(None, tf.string, name="method")
            noise = tf.TensorSpec(None, tf.float32, name="noise")

            def trace(fn, *specs):
                return tf.function(fn, input_signature=list(specs),
                                   autograph=False).get_concrete_function()

            seed = tf.TensorSpec(None, tf.int64, name="seed")
            evidence = tf.TensorSpec(None, tf.int32, name="evidence")
            mask = tf.TensorSpec(None, tf.bool, name="evidence_mask")
            slots = tf.TensorSpec(None, tf.int32, name="slots")
            sample = trace(self._sample, seed, tf.TensorSpec(None, tf.int32, name="batch_size"),
                           method)
            functions = {
                "serving_default": sample, "sample": sample,
                "sample_with_noise": trace(self._sample_with_noise, noise, method),
                "sample_with_evidence": trace(self._sample_with_evidence, noise, evidence, mask,
                                              method),
                "sample_many": trace(self._sample_many, seed,
                                     tf.TensorSpec(None, tf.int32, name="num_samples"), slots,
                                     method),
                "sample_many_with_evidence": trace(self._sample_many_with_evidence, noise,
                                                   evidence, mask, slots, method),
                "logits": trace(self._logits, tf.TensorSpec(None, tf.int32, name="x")),
                "log_prob": trace(self._log_prob, tf.TensorSpec(None, tf.int32, name="x")),
                "metadata": trace(self._metadata),
            }
            self._concrete = _Untracked(functions)
            served, seen = [], set()
            for function in functions.values():
                for variable in function.variables:
                    if id(variable) not in seen:
                        seen.add(id(variable))
                        served.append(variable)
            self.served_variables = served
        return dict(self._concrete.value)

    # ------------------------------------------------------------------ signature bodies
    def _sample(self, seed, batch_size, method):
        seed, batch_size = self._checked_seed(seed), self._checked_count(batch_size, "batch_size")
        return self._run_sampler(self._noise_from_seed(seed, batch_size), None, None, method)

    def _sample_with_noise(self, noise, method):
        noise = _after([self._check_noise(noise)], noise)
        return self._run_sampler(noise, None, None, method)

    def _sample_with_evidence(self, noise, evidence, evidence_mask, method):
        noise, evidence, evidence_mask = self._checked_evidence(noise, evidence, evidence_mask)
        return self._run_sampler(noise, evidence, evidence_mask, method)

    def _sample_many(self, seed, num_samples, slots, method):
        seed = self._checked_seed(seed)
        num_samples = self._checked_count(num_samples, "num_samples")
        slots = self._checked_count(slots, "slots")
        return self._run_sampler(self._noise_from_seed(seed, num_samples), None, None, method,
                                 slots)

    def _sample_many_with_evidence(self, noise, evidence, evidence_mask, slots, method):
        noise, evidence, evidence_mask = self._checked_evidence(noise, evidence, evidence_mask)
        slots = self._checked_count(slots, "slots")
        return self._run_sampler(noise, evidence, evidence_mask, method, slots)

    def _logits(self, x):
        x = self._checked_x(x)
        logits, _ = self._arm.value(x)
        return {"logits": tf.ensure_shape(tf.cast(logits, tf.float32),
                                          (None,) + self._image_shape + (self._num_categories,))}

    def _log_prob(self, x):
        x = self._checked_x(x)
        logits, _ = self._arm.value(x)
        logits = tf.cast(logits, tf.float32)
        return {"log_prob": tf.ensure_shape(pixelcnn.log_prob(logits, x), [None]),
                "bits_per_dim": tf.ensure_shape(pixelcnn.bits_per_dim(logits, x), [None])}

    def _metadata(self):
        return {"json": tf.constant(self.metadata_json),
                "image_shape": tf.constant(self._image_shape, tf.int32),
                "num_categories": tf.constant(self._num_categories, tf.int32),
                "methods": tf.constant(self._methods)}

    # ------------------------------------------------------------------------- helpers
    def _check_noise(self, noise):
        return _check_shape(noise, "noise", self._image_shape + (self._num_categories,),
                            "batch, height, width, channels, categories", min_batch=1)

    def _check_image(self, x, name, min_batch):
        return _check_shape(x, name, self._image_shape, "batch, height, width, channels",
                            min_batch=min_batch)

    def _checked_x(self, x):
        x = _after([self._check_image(x, "x", 0)], x)
        return _after([_check_range(x, "x", self._num_categories)], x)

    def _method_index(self, method):
        method = _after([_check_scalar(method, "method")], method)
        method = tf.reshape(method, [])
        matches = tf.equal(method, tf.constant(self._methods))
        shown = tf.where(tf.equal(method, ""), "(empty string)", method)
        known = _require(tf.reduce_any(matches), "unknown sampling method: ", shown,
                         " (choose one of: " + ", ".join(self._methods) + ")", name="check_method")
        index = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
        return _after([known], index)

    def _checked_seed(self, seed):
        """int64 `[2]` in the int32 range -> the int32 pair that `tfps.noise.as_seed` makes."""
        seed = _after([_require(tf.equal(tf.rank(seed), 1) & tf.equal(tf.size(seed), 2),
                                "seed must have shape [2], got ", _shape_string(seed),
                                name="check_seed_shape")], seed)
        seed = tf.reshape(seed, [2])
        in_range = _require(
            tf.reduce_all((seed >= _INT32_MIN) & (seed <= _INT32_MAX)),
            f"seed values must lie in the int32 range [{_INT32_MIN}, {_INT32_MAX}], got [",
            tf.strings.reduce_join(tf.strings.as_string(seed), separator=", "), "]",
            name="check_seed_range")
        return tf.cast(_after([in_range], seed), tf.int32)

    def _checked_count(self, count, name):
        """An int32 scalar >= 1 (batch_size, num_samples, slots)."""
        count = tf.reshape(_after([_check_scalar(count, name)], count), [])
        return _after([_require(count >= 1, f"{name} must be >= 1, got ",
                                tf.strings.as_string(count), name=f"check_{name}_range")], count)

    def _noise_from_seed(self, seed, batch_size):
        """The draw of `tfps.noise.gumbel_noise((batch_size, H, W, C, K), seed)` in the library."""
        shape = tf.concat([tf.reshape(batch_size, [1]),
                           list(self._image_shape) + [self._num_categories]], axis=0)
        return noise_lib.gumbel_noise(shape, seed)

    def _checked_evidence(self, noise, evidence, evidence_mask):
        checks = [self._check_noise(noise), self._check_image(evidence, "evidence", 1),
                  self._check_image(evidence_mask, "evidence_mask", 1)]
        noise, evidence, evidence_mask = _after(checks, noise, evidence, evidence_mask)
        checks = [
            _require(tf.reduce_all(tf.equal(tf.shape(evidence), tf.shape(noise)[:-1])),
                     "evidence must have the batch size of noise: noise has shape ",
                     _shape_string(noise), ", evidence ", _shape_string(evidence),
                     name="check_evidence_batch"),
            _require(tf.reduce_all(tf.equal(tf.shape(evidence_mask), tf.shape(evidence))),
                     "evidence_mask must have the shape of evidence: evidence has shape ",
                     _shape_string(evidence), ", evidence_mask ", _shape_string(evidence_mask),
                     name="check_evidence_mask_shape"),
            _check_range(evidence, "evidence", self._num_categories),
        ]
        return _after(checks, noise, evidence, evidence_mask)

    def _run_sampler(self, noise, evidence, evidence_mask, method, slots=None):
        """Dispatches on the method name with a `tf.switch_case` over the sampler's loops.

        `slots=None`: the batch loop (`loop_function`); else the scheduled loop
        (`scheduled_loop_function`) with that many slots.
        """
        index = self._method_index(method)
        if evidence is None:
            evidence = tf.zeros(tf.shape(noise)[:-1], tf.int32)
            evidence_mask = tf.zeros(tf.shape(noise)[:-1], tf.bool)

        def branch(name):
            if slots is None:
                return tuple(self._sampler.loop_function(name)(noise, evidence, evidence_mask))
            return tuple(self._sampler.scheduled_loop_function(name)(
                noise, evidence, evidence_mask, slots))

        results = tf.switch_case(index, [functools.partial(branch, m) for m in self._methods])
        image = (None,) + self._image_shape
        shapes = dict(samples=image, arm_calls=(), arm_calls_per_example=(None,),
                      converged_at=image, accepted_at=image, forecast_mistakes=image,
                      forecasts_checked=(None,))
        outputs = {name: tf.ensure_shape(value, shapes[name])
                   for name, value in zip(sampling.SampleResult._fields, results)}
        if self._decode is not None:
            outputs["images"] = tf.ensure_shape(self._decode.value(outputs["samples"]),
                                                (None,) + self._decoded_shape)
        return outputs


# ----------------------------------------------------------------------------- writing


def save(module, directory):
    """Writes `module` (a `ServingModule`) as a SavedModel to `directory` (must not exist)."""
    if os.path.exists(directory):
        raise FileExistsError(f"{directory} already exists")
    staging = tempfile.mkdtemp(prefix="tfps_metadata_")
    try:
        asset_path = os.path.join(staging, METADATA_ASSET)
        with open(asset_path, "w") as f:
            f.write(module.metadata_json + "\n")
        module.metadata_asset = tf.saved_model.Asset(asset_path)
        tf.saved_model.save(module, directory, signatures=module.signatures())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def list_versions(base):
    """Sorted integer versions `v` with a SavedModel in `base/v`."""
    if not os.path.isdir(base):
        return []
    return sorted(int(v) for v in os.listdir(base)
                  if _VERSION_DIR.match(v) and os.path.isfile(os.path.join(base, v, "saved_model.pb")))


def _next_version(base):
    taken = [int(v) for v in os.listdir(base) if _VERSION_DIR.match(v)] if os.path.isdir(base) else []
    return max(taken, default=0) + 1


def export_model(model, base, version=None, overwrite=False, metadata=None, sampler=None,
                 forecasters=None, jit_compile=False, decoder=None):
    """Exports `model` to `base/<version>` and returns that path.

    `version=None` takes the next free number (max + 1, starting at 1). An explicit version that
    exists is an error unless `overwrite`. `metadata` is merged into the export's metadata;
    `sampler`, `forecasters`, `jit_compile` and `decoder` are passed to `ServingModule`. The SavedModel is written to a hidden staging directory
    next to the versions and renamed into place at the end, so a failed export leaves no partial
    version and never touches the versions already there (TF Serving ignores non-integer names).
    """
    if version is not None and (not isinstance(version, (int, np.integer)) or version < 1):
        raise ValueError(f"version must be an integer >= 1, got {version!r}")
    os.makedirs(base, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=base)
    try:
        module = ServingModule(model, metadata=metadata, sampler=sampler, forecasters=forecasters,
                               jit_compile=jit_compile, decoder=decoder)
        written = save(module, os.path.join(staging, "model"))
        if version is None:
            while True:  # the version number is the directory name only, so it is chosen last
                target = os.path.join(base, str(_next_version(base)))
                try:
                    os.rename(written, target)
                    return target
                except OSError:
                    if not os.path.exists(target):
                        raise  # a concurrent export took the number: try the next one
        target = os.path.join(base, str(int(version)))
        if os.path.exists(target):
            if not overwrite:
                raise FileExistsError(f"{target} already exists (pass overwrite=True / "
                                      f"--overwrite to replace it)")
            replaced = os.path.join(staging, "replaced")
            os.rename(target, replaced)
            try:
                os.rename(written, target)
            except OSError:
                os.rename(replaced, target)  # put the old version back before failing
                raise
            return target
        os.rename(written, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def training_metadata(config, logdir):
    """The `training` metadata of a run: dataset, step and the final bpd when they match."""
    metrics = _read_json(os.path.join(logdir, "metrics.json")) or {}
    step = config.get("step")
    same = metrics.get("step") == step
    return {
        "dataset": config.get("dataset"),
        "train_config": config.get("train"),
        "step": step,
        "checkpoint": os.path.basename(config.get("checkpoint") or "") or None,
        # metrics.json describes the final checkpoint; an older one has no measured bpd.
        "test_bpd": metrics.get("test_bpd") if same else None,
        "validation_bpd": metrics.get("validation_bpd") if same else None,
    }


def export_trained(model_path, export_root="exported", name=None, version=None, overwrite=False,
                   jit_compile=False):
    """Exports a training run (`logdir` or checkpoint prefix) to `export_root/<name>/<version>`.

    `name` defaults to the run's dataset name. Returns the version directory.
    """
    from tfps import forecast, latent, training  # local: loading exports must not need the training stack
    model, config = training.load_trained(model_path)
    logdir = os.path.dirname(os.path.dirname(config["checkpoint"]))
    if not os.path.isfile(os.path.join(logdir, "config.json")):
        logdir = os.path.dirname(config["checkpoint"])
    info = training_metadata(config, logdir)
    name = name or (info["dataset"] or {}).get("name") or "model"
    if not re.match(r"^[A-Za-z0-9_.-]+$", name) or name.startswith("."):
        raise ValueError(f"name must be a plain directory name (letters, digits, _ . -), got {name!r}")
    return export_model(model, os.path.join(export_root, name), version=version,
                        overwrite=overwrite, jit_compile=jit_compile,
                        metadata={"name": name, "training": info},
                        forecasters=forecast.learned_forecasters(config.get("forecast_heads")),
                        decoder=latent.decoder_for(config))


# ----------------------------------------------------------------------------- loading


def is_export(path):
    """True if `path` is a SavedModel directory or a base directory holding versions of one."""
    path = os.fspath(path)
    return os.path.isfile(os.path.join(path, "saved_model.pb")) or bool(list_versions(path))


def resolve_export(path):
    """`base/<version>` for a version directory, or the latest version of a base directory."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path}: not a SavedModel directory and holds no numbered "
                                f"versions of one")
    return os.path.join(path, str(versions[-1]))


def default_samples_dir(path):
    """Where `launch/sample.py` writes samples of an export by default (never inside the export):
    `runs/samples/<name>_v<version>`; None if `path` is not an export."""
    if not is_export(path):
        return None
    directory = os.path.abspath(resolve_export(path))
    name = os.path.basename(os.path.dirname(directory))
    return os.path.join("runs", "samples", f"{name}_v{os.path.basename(directory)}")


def read_metadata(path):
    """The metadata dict of an export (from its asset file; no graph is loaded)."""
    directory = resolve_export(path)
    metadata = _read_json(os.path.join(directory, "assets", METADATA_ASSET))
    if metadata is None:
        raise ValueError(f"{directory}: no readable assets/{METADATA_ASSET}; not a tfps export")
    return metadata


class ExportedSampler:
    """A loaded export with the interface of `tfps.sampling.PredictiveSampler`.

    `sample`, `sample_from_seed`, `sample_scheduled`, `sample_scheduled_from_seed`,
    `loop_function` and `scheduled_loop_function` return `tfps.sampling.SampleResult`s computed by
    the SavedModel's signatures, so launchers and benchmarks take either kind of sampler. Bad
    inputs raise `tf.errors.InvalidArgumentError` from the graph (the library raises ValueError).
    """

    def __init__(self, path):
        self.path = resolve_export(path)
        self.loaded = tf.saved_model.load(self.path)
        self.signatures = self.loaded.signatures
        missing = [s for s in SIGNATURES if s not in self.signatures]
        if missing:
            raise ValueError(f"{self.path}: not a tfps export (missing signatures {missing})")
        self.metadata = json.loads(self.signatures["metadata"]()["json"].numpy().decode())
        self.image_shape = tuple(self.metadata["image_shape"])
        self.num_categories = int(self.metadata["num_categories"])
        self.num_variables = int(np.prod(self.image_shape))
        self.methods = tuple(self.metadata["methods"])

    def check_method(self, method):
        if method not in self.methods:
            raise ValueError(f"unknown sampling method {method!r}; choose one of {list(self.methods)}")

    @staticmethod
    def _result(outputs):
        return sampling.SampleResult(**{name: outputs[name] for name in SAMPLE_OUTPUTS})

    @staticmethod
    def _seed(seed):
        """An int s means the pair [0, s], as in `tfps.noise.as_seed`."""
        return tf.constant([0, seed] if isinstance(seed, (int, np.integer)) else seed, tf.int64)

    def _evidence(self, noise, evidence, evidence_mask):
        if evidence is None and evidence_mask is None:
            shape = tf.shape(noise)[:-1]
            return tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool)
        if evidence is None or evidence_mask is None:
            raise ValueError("evidence and evidence_mask must be given together")
        return tf.cast(evidence, tf.int32), tf.convert_to_tensor(evidence_mask, tf.bool)

    def sample(self, noise, method="fpi", evidence=None, evidence_mask=None):
        """Like `PredictiveSampler.sample`, through `sample_with_noise` / `sample_with_evidence`."""
        noise = tf.cast(noise, tf.float32)
        if evidence is None and evidence_mask is None:
            return self._result(self.signatures["sample_with_noise"](noise=noise, method=method))
        evidence, evidence_mask = self._evidence(noise, evidence, evidence_mask)
        return self._result(self.signatures["sample_with_evidence"](
            noise=noise, evidence=evidence, evidence_mask=evidence_mask, method=method))

    def sample_from_seed(self, seed, batch_size, method="fpi", evidence=None, evidence_mask=None):
        """Like `PredictiveSampler.sample_from_seed`, through `sample` (no evidence)."""
        if evidence is not None or evidence_mask is not None:
            noise = noise_lib.gumbel_noise(
                (int(batch_size),) + self.image_shape + (self.num_categories,), seed)
            return self.sample(noise, method, evidence, evidence_mask)
        return self._result(self.signatures["sample"](
            seed=self._seed(seed), batch_size=tf.constant(batch_size, tf.int32),
            method=tf.constant(method)))

    def sample_scheduled(self, noise, method="fpi", slots=32, evidence=None, evidence_mask=None):
        """Like `PredictiveSampler.sample_scheduled`, through `sample_many_with_evidence`."""
        noise = tf.cast(noise, tf.float32)
        evidence, evidence_mask = self._evidence(noise, evidence, evidence_mask)
        return self._result(self.signatures["sample_many_with_evidence"](
            noise=noise, evidence=evidence, evidence_mask=evidence_mask,
            slots=tf.constant(slots, tf.int32), method=tf.constant(method)))

    def sample_scheduled_from_seed(self, seed, num_samples, slots=32, method="fpi", evidence=None,
                                   evidence_mask=None):
        """Like `PredictiveSampler.sample_scheduled_from_seed`, through `sample_many`."""
        if evidence is not None or evidence_mask is not None:
            noise = noise_lib.gumbel_noise(
                (int(num_samples),) + self.image_shape + (self.num_categories,), seed)
            return self.sample_scheduled(noise, method, slots, evidence, evidence_mask)
        return self._result(self.signatures["sample_many"](
            seed=self._seed(seed), num_samples=tf.constant(num_samples, tf.int32),
            slots=tf.constant(slots, tf.int32), method=tf.constant(method)))

    def loop_function(self, method):
        """`(noise, evidence, evidence_mask) -> SampleResult` through the SavedModel."""
        self.check_method(method)
        method = tf.constant(method)
        with_noise = self.signatures["sample_with_noise"]
        with_evidence = self.signatures["sample_with_evidence"]

        def run(noise, evidence, evidence_mask):
            if not bool(tf.reduce_any(evidence_mask)):
                return self._result(with_noise(noise=noise, method=method))
            return self._result(with_evidence(noise=noise, evidence=evidence,
                                              evidence_mask=evidence_mask, method=method))
        return run

    def scheduled_loop_function(self, method):
        """`(noise, evidence, evidence_mask, slots) -> SampleResult` through the SavedModel."""
        self.check_method(method)
        method = tf.constant(method)
        scheduled = self.signatures["sample_many_with_evidence"]
        return lambda noise, evidence, evidence_mask, slots: self._result(scheduled(
            noise=noise, evidence=evidence, evidence_mask=evidence_mask,
            slots=tf.cast(slots, tf.int32), method=method))

    def logits(self, x):
        return self.signatures["logits"](x=tf.cast(x, tf.int32))["logits"]

    def log_prob(self, x):
        """`(log_prob [B] nats, bits_per_dim [B])`."""
        out = self.signatures["log_prob"](x=tf.cast(x, tf.int32))
        return out["log_prob"], out["bits_per_dim"]


def load_exported(path):
    """Loads `exported/<name>/<version>` (or `exported/<name>`: its latest version)."""
    return ExportedSampler(path)


# ----------------------------------------------------------------------------- speed


def compare_speed(exported, library, methods=("ancestral", "fpi"), batch_sizes=(1, 32),
                  seeds=range(10)):
    """Times `exported` (an `ExportedSampler`) against `library` (a `PredictiveSampler` of the
    same model): both run `loop_function(method)` on the same noise, alternating seed by seed so
    that load from other processes hits both alike; the first (tracing) run is excluded.

    Returns one dict per (batch size, method) with ARM calls (% of d), mean, std and median
    seconds per batch for each, and `ratio` = median SavedModel time / median library time.
    Raises AssertionError if the two disagree on a sample or on the number of ARM calls.
    """
    rows = []
    for batch_size in batch_sizes:
        shape = (batch_size,) + tuple(library.image_shape)
        evidence, mask = tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool)
        noise_shape = shape + (library.num_categories,)
        for method in methods:
            runs = {"library": library.loop_function(method),
                    "saved_model": exported.loop_function(method)}
            warm_up = noise_lib.gumbel_noise(noise_shape, 10_000)
            for run in runs.values():
                run(warm_up, evidence, mask).samples.numpy()
            seconds = {name: [] for name in runs}
            calls = []
            for seed in seeds:
                noise = noise_lib.gumbel_noise(noise_shape, seed)
                noise.numpy()
                results = {}
                for name, run in runs.items():
                    start = time.perf_counter()
                    result = run(noise, evidence, mask)
                    result.samples.numpy()
                    seconds[name].append(time.perf_counter() - start)
                    results[name] = result
                lib, exp = results["library"], results["saved_model"]
                if (int(lib.arm_calls) != int(exp.arm_calls)
                        or not np.array_equal(lib.samples.numpy(), exp.samples.numpy())):
                    raise AssertionError(f"{method} at batch {batch_size}, seed {seed}: the "
                                         f"SavedModel and the library disagree")
                calls.append(100.0 * int(lib.arm_calls) / library.num_variables)
            row = {"method": method, "batch_size": batch_size, "seeds": len(calls),
                   "calls_percent": float(np.mean(calls))}
            for name, values in seconds.items():
                row[f"{name}_mean_s"] = float(np.mean(values))
                row[f"{name}_std_s"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                row[f"{name}_median_s"] = float(np.median(values))
            row["ratio"] = row["saved_model_median_s"] / row["library_median_s"]
            rows.append(row)
    return rows
