"""The object saved as a tfps SavedModel: the ARM, a sampler over it, and the metadata.

`ServingModule` implements the signatures of the serving contract (`tfps.serving.contract.TABLE`):
their input specs, input checks and output shapes all come from that table. `sample` draws the
Gumbel noise eps ~ G(0, 1) [1, eq. 5] from `seed` exactly as `tfps.sampling.noise.gumbel_noise`
does, so `sample(seed=[0, s], batch_size=b, method=m)` equals `sampler.sample_from_seed(s, b, m)` in
the library. Every method returns the ancestral sample for the same noise (the fixed point of
x = argmax(logits(x) + eps), [1, eq. 8]); methods differ only in `arm_calls`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import functools
import inspect
import json

import tensorflow as tf

from tfps.models import pixelcnn
from tfps.sampling import budget, events, inpainting, ordered_view, predictive, protocol
from tfps.sampling import noise as noise_lib
from tfps.serving import contract, contract_checks
from tfps.serving import metadata as metadata_lib


def arm_function(model):
    """The canonical ARM `x [B, H, W, C] -> (logits, h)` of a protocol model (`tfps.models.arms`) in
    inference mode, as one `tf.function`.

    Every sampling loop, `logits` and `log_prob` call it, so the SavedModel stores the network
    once instead of once per call site; TensorFlow inlines the calls when it runs the graph.
    """
    canonical = events.canonical_shape(protocol.event_shape_of(model))
    spec = tf.TensorSpec((None,) + canonical, tf.int32)
    arm = protocol.canonical_arm(model)
    return tf.function(lambda x: arm(x, training=False), input_signature=[spec], autograph=False)


class _Untracked:
    """Holds a value out of sight of tf.Module's attribute tracking (so it is not saved)."""

    def __init__(self, value):
        self.value = value


def _trace(fn, name):
    """The concrete function of `fn` for signature `name`, traced with the table's specs."""
    specs = contract.input_specs(name)
    if list(inspect.signature(fn).parameters) != [s.name for s in specs]:
        raise TypeError(f"{fn.__name__} does not take the inputs of {name} in table order")
    return tf.function(fn, input_signature=specs, autograph=False).get_concrete_function()


class ServingModule(tf.Module):
    """The object saved as the SavedModel: the ARM, a sampler over it, and the metadata.

    Args:
      model: an ARM of the protocol (`tfps.models.arms`: a `tfps.models.pixelcnn.PixelCNN`, a
        sequence model, your own); the signatures take and return examples in its event shape.
      metadata: JSON-able dict merged into the generated metadata (training facts, name, ...).
      sampler: the `PredictiveSampler` whose methods are exported; its `methods` are the exported
        method names. Default: a sampler over `arm_function(model)`, with `forecasters` and
        `jit_compile`. A sampler of your own should call the ARM through `arm_function(model)`
        too, or the export holds one copy of the network per use (tens of copies).
      forecasters, jit_compile: for the default sampler (see `PredictiveSampler`).
      incremental: the default sampler makes incremental ARM calls (`tfps.sampling.incremental`; a
        PixelCNN only): the same samples, arm_calls and contract, less work per call.
      decoder: for an ARM on autoencoder latents, its `tfps.serving.decoder.LatentDecoder`; the
        sampling signatures then also return the decoded `images` [1, sec. 4.2].

    What is saved is not the Keras model but the `tf.Variable`s the signatures read
    (`served_variables`, gathered when the signatures are traced, so weights of learned forecasters
    come along). Saving the Keras 3 model object instead gives every weight a second variable in
    the SavedModel graph; the TF1 loaders (`saved_model_cli run`, TF Serving) then restore one
    copy while the signatures read the other, and fail with "Could not find variable ...".
    """

    def __init__(
        self,
        model,
        metadata=None,
        sampler=None,
        forecasters=None,
        jit_compile=False,
        decoder=None,
        incremental=False,
    ):
        super().__init__(name="tfps_serving")
        self._decode = _Untracked(decoder.function) if decoder is not None else None
        self._decoded_shape = tuple(decoder.image_shape) if decoder is not None else None
        prefix = getattr(decoder, "prefix_function", None)  # an ordered code: anytime signatures
        self._decode_prefix = _Untracked(prefix) if prefix is not None else None
        if sampler is not None and incremental:
            raise ValueError("incremental is for the default sampler; give yours incremental_arm")
        self._arm = _Untracked(arm_function(model))
        # A family whose first ordering is not the raster order samples through its ordered view,
        # which calls the network in generation order (`tfps.sampling.ordered_view`).
        in_raster_order = ordered_view.sampling_order(model) is None
        self._sampler = sampler or predictive.sampler_for_model(
            model,
            forecasters=forecasters,
            jit_compile=jit_compile,
            arm=self._arm.value if in_raster_order else None,
            incremental=incremental,
        )
        self._event_shape = protocol.event_shape_of(model)
        self._image_shape = events.canonical_shape(self._event_shape)
        self._num_categories = int(model.num_categories)
        if (
            getattr(self._sampler, "event_shape", self._sampler.image_shape) != self._event_shape
            or self._sampler.num_categories != self._num_categories
        ):
            raise ValueError("sampler and model disagree on the event shape or K")
        self._methods = tuple(self._sampler.methods)
        # `inpaint`: a family of orderings fills each example through the ordered view of its
        # ordering (`tfps.sampling.inpainting.fill_in_chosen_orderings`); any other ARM with this
        # sampler, in its raster order (the ordering None).
        family = getattr(model, "orderings", None)
        self._orderings = tuple(family or (None,))
        self._ordered = None
        if family:
            ordered = [
                predictive.sampler_for_model(
                    ordered_view.in_ordering(model, k), jit_compile=jit_compile
                )
                for k in range(len(family))
            ]
            if tuple(ordered[0].methods) != self._methods:
                raise ValueError(
                    f"a family of orderings is served with the methods of its ordered views, "
                    f"{list(ordered[0].methods)}; the sampler has {list(self._methods)}"
                )
            self._ordered = _Untracked(ordered)
        metadata = metadata_lib.serving_metadata(model, self._sampler, decoder, metadata)
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
            names = contract.signature_names(anytime=self._decode_prefix is not None)
            traced = {
                name: _trace(getattr(self, f"_{name}"), name)
                for name in contract.BY_NAME
                if name in names
            }
            functions = {name: traced[contract.ALIASES.get(name, name)] for name in names}
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
    def _checked(self, name, **values):
        return contract_checks.checked_inputs(
            name, values, self._event_shape, self._num_categories, self._methods
        )

    def _sample(self, seed, batch_size, method):
        c = self._checked("sample", seed=seed, batch_size=batch_size, method=method)
        return self._run_sampler(self._noise_from_seed(c["seed"], c["batch_size"]), c["method"])

    def _sample_with_noise(self, noise, method):
        return self._run_sampler(**self._checked("sample_with_noise", noise=noise, method=method))

    def _sample_with_evidence(self, noise, evidence, evidence_mask, method):
        return self._run_sampler(
            **self._checked(
                "sample_with_evidence",
                noise=noise,
                evidence=evidence,
                evidence_mask=evidence_mask,
                method=method,
            )
        )

    def _sample_many(self, seed, num_samples, slots, method):
        c = self._checked(
            "sample_many", seed=seed, num_samples=num_samples, slots=slots, method=method
        )
        return self._run_sampler(
            self._noise_from_seed(c["seed"], c["num_samples"]), c["method"], slots=c["slots"]
        )

    def _sample_many_with_evidence(self, noise, evidence, evidence_mask, slots, method):
        return self._run_sampler(
            **self._checked(
                "sample_many_with_evidence",
                noise=noise,
                evidence=evidence,
                evidence_mask=evidence_mask,
                slots=slots,
                method=method,
            )
        )

    def _sample_within_budget(self, seed, batch_size, max_calls, max_milliseconds, method):
        c = self._checked(
            "sample_within_budget",
            seed=seed,
            batch_size=batch_size,
            max_calls=max_calls,
            max_milliseconds=max_milliseconds,
            method=method,
        )
        noise = self._noise_from_seed(c["seed"], c["batch_size"])
        seconds = tf.cast(c["max_milliseconds"], tf.float64) / 1000.0

        def branch(name):
            return tuple(self._sampler.budget_loop_function(name)(noise, c["max_calls"], seconds))

        branches = [functools.partial(branch, m) for m in self._methods]
        result = predictive.SampleResult(*tf.switch_case(c["method"], branches))
        codes, num_codes = budget.finished_rows(
            result.samples, result.accepted_at, self._event_shape
        )
        outputs = {**result._replace(samples=codes)._asdict(), "num_codes": num_codes}
        outputs["images"] = self._decode_prefix.value(codes, num_codes)
        return self._shaped("sample_within_budget", outputs)

    def _inpaint(self, seed, x, visible, method):
        c = self._checked("inpaint", seed=seed, x=x, visible=visible, method=method)
        # Static event axes (the inputs have unknown shapes until checked) for the ordered views.
        x, visible = (tf.reshape(c[k], (-1,) + self._event_shape) for k in ("x", "visible"))
        noise = tf.reshape(
            self._noise_from_seed(c["seed"], tf.shape(x)[0]),
            (-1,) + self._event_shape + (self._num_categories,),
        )
        flat = tf.reshape(visible, [tf.shape(x)[0], -1])
        index, exact = inpainting.choose_orderings(self._orderings, flat)
        if self._ordered is None:
            result = self._result(noise, c["method"], x, visible)
        else:
            result = self._complete(
                inpainting.fill_in_chosen_orderings(
                    self._ordered.value,
                    self._orderings,
                    self._methods,
                    noise,
                    x,
                    visible,
                    index,
                    c["method"],
                )  # fmt: skip
            )
        outputs = {**result._asdict(), "ordering_index": index, "exact": exact}
        return self._shaped("inpaint", outputs)

    def _event_logits(self, x):
        """The ARM's float32 logits `[B, *event_shape, K]` of x `[B, *event_shape]`."""
        logits, _ = self._arm.value(events.reshape_batch(x, self._image_shape))
        return events.reshape_batch(tf.cast(logits, tf.float32), self._event_shape + (-1,))

    def _logits(self, x):
        x = self._checked("logits", x=x)["x"]
        return self._shaped("logits", {"logits": self._event_logits(x)})

    def _log_prob(self, x):
        x = self._checked("log_prob", x=x)["x"]
        logits = self._event_logits(x)
        return self._shaped(
            "log_prob",
            {
                "log_prob": protocol.log_prob(logits, x),
                "bits_per_dim": pixelcnn.bits_per_dim(logits, x),
            },
        )

    def _metadata(self):
        return {
            "json": tf.constant(self.metadata_json),
            "image_shape": tf.constant(self._image_shape, tf.int32),
            "event_shape": tf.constant(self._event_shape, tf.int32),
            "num_categories": tf.constant(self._num_categories, tf.int32),
            "methods": tf.constant(self._methods),
        }

    # ------------------------------------------------------------------------- helpers
    def _shaped(self, name, outputs):
        """`outputs` with the static shapes of signature `name` in the contract."""
        shapes = contract.output_shapes(
            name, self._event_shape, self._num_categories, self._decoded_shape
        )
        return {key: tf.ensure_shape(value, shapes[key]) for key, value in outputs.items()}

    def _noise_from_seed(self, seed, batch_size):
        """The draw of `tfps.sampling.noise.gumbel_noise((batch_size, *event_shape, K), seed)` in
        the library."""
        shape = tf.concat(
            [tf.reshape(batch_size, [1]), list(self._event_shape) + [self._num_categories]], axis=0
        )
        return noise_lib.gumbel_noise(shape, seed)

    def _run_sampler(self, noise, method, evidence=None, evidence_mask=None, slots=None):
        """The outputs of a sampling signature (`_result`), with the decoded images of an ARM on
        latents."""
        result = self._result(noise, method, evidence, evidence_mask, slots)
        outputs = self._shaped("sample", result._asdict())
        if self._decode is not None:
            images = self._decode.value(outputs["samples"])
            outputs.update(self._shaped("sample", {"images": images}))
        return outputs

    def _result(self, noise, method, evidence=None, evidence_mask=None, slots=None):
        """Dispatches on the method index with a `tf.switch_case` over the sampler's loops.

        `slots=None`: the batch loop (`loop_function`); else the scheduled loop
        (`scheduled_loop_function`) with that many slots.
        """
        if evidence is None:
            evidence = tf.zeros(tf.shape(noise)[:-1], tf.int32)
            evidence_mask = tf.zeros(tf.shape(noise)[:-1], tf.bool)

        def branch(name):
            if slots is None:
                return tuple(self._sampler.loop_function(name)(noise, evidence, evidence_mask))
            return tuple(
                self._sampler.scheduled_loop_function(name)(noise, evidence, evidence_mask, slots)
            )

        results = tf.switch_case(method, [functools.partial(branch, m) for m in self._methods])
        return self._complete(predictive.SampleResult(*results))

    @staticmethod
    def _complete(result):
        """`result` once every variable is accepted: in the signature's graph, after the (possibly
        XLA-compiled) loop, a loop that stopped early is an error, not a sample."""
        with tf.control_dependencies([contract_checks.require_complete(result.accepted_at)]):
            return predictive.SampleResult(*(tf.identity(t) for t in result))
