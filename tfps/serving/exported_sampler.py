"""A loaded tfps SavedModel as a sampler: `ExportedSampler` implements the sampler interface
(`tfps.sampling.interface.Sampler`) through the export's signatures, so every caller of the library
sampler takes an export too.
"""

import json

import numpy as np
import tensorflow as tf

from tfps.sampling import events, predictive
from tfps.sampling import noise as noise_lib
from tfps.serving import contract
from tfps.serving.export import resolve_export


class ExportError(ValueError):
    """A SavedModel directory that cannot be loaded (truncated, corrupt or incomplete)."""


# What `tf.saved_model.load` raises for a damaged directory: a truncated saved_model.pb (OSError),
# missing variables (FileNotFoundError), a truncated variables file (IndexError, OpError).
_LOAD_ERRORS = (OSError, ValueError, IndexError, tf.errors.OpError)


def _load_saved_model(path):
    try:
        return tf.saved_model.load(path)
    except _LOAD_ERRORS as e:
        raise ExportError(
            f"{path}: a corrupt or incomplete SavedModel, which cannot be loaded "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); export it again"
        ) from e


class ExportedSampler:
    """A loaded export with the interface of `tfps.sampling.predictive.PredictiveSampler`.

    `sample`, `sample_from_seed`, `sample_scheduled`, `sample_scheduled_from_seed`,
    `loop_function` and `scheduled_loop_function` return `tfps.sampling.predictive.SampleResult`s
    computed by the SavedModel's signatures, so launchers and benchmarks take either kind of
    sampler. Noise and evidence are checked as the library checks them
    (`tfps.sampling.events`: ValueError) before the graph sees them, as is the dtype of x; the
    other bad inputs raise `tf.errors.InvalidArgumentError` from the graph.
    """

    def __init__(self, path):
        self.path = resolve_export(path)
        self.loaded = _load_saved_model(self.path)
        self.signatures = self.loaded.signatures
        missing = [
            s
            for s in contract.SIGNATURES
            if s not in self.signatures and s not in contract.ADDED_LATER
        ]
        if missing:
            raise ValueError(f"{self.path}: not a tfps export (missing signatures {missing})")
        self.metadata = json.loads(self.signatures["metadata"]()["json"].numpy().decode())
        self.image_shape = tuple(self.metadata["image_shape"])
        self.event_shape = tuple(self.metadata.get("event_shape") or self.image_shape)
        self.num_categories = int(self.metadata["num_categories"])
        self.num_variables = int(np.prod(self.image_shape))
        self.methods = tuple(self.metadata["methods"])
        # Whether the signatures make incremental ARM calls (chosen at export; older: plain).
        self.incremental = bool((self.metadata.get("incremental") or {}).get("used", False))

    def check_method(self, method):
        if method not in self.methods:
            raise ValueError(
                f"unknown sampling method {method!r}; choose one of {list(self.methods)}"
            )

    def check_noise(self, noise):
        """Noise as float32 `[B, *event_shape, K]`; ValueError naming a wrong shape (as the
        library's `PredictiveSampler.check_noise`, before the graph sees it)."""
        return events.check_noise(noise, self.event_shape + (self.num_categories,))

    @staticmethod
    def _result(outputs):
        return predictive.SampleResult(**{name: outputs[name] for name in contract.SAMPLE_OUTPUTS})

    @staticmethod
    def _seed(seed):
        """An int s means the pair [0, s], as in `tfps.sampling.noise.as_seed`."""
        return tf.constant([0, seed] if isinstance(seed, (int, np.integer)) else seed, tf.int64)

    def _evidence(self, noise, evidence, evidence_mask):
        """`(evidence int32, evidence_mask bool)` checked as the library checks them
        (`tfps.sampling.events.check_evidence`: integer values in [0, K), a bool mask, the batch of
        the noise): float evidence is refused, not truncated."""
        return events.check_evidence(
            evidence, evidence_mask, noise.shape[0], self.event_shape, self.num_categories
        )

    def _x(self, x):
        """x as int32 for the `logits` / `log_prob` signatures: a non-integer dtype is refused as
        the library refuses it (ValueError: a cast would truncate floats), a wider integer dtype's
        values checked before the cast (it would wrap); shape and values are checked in the graph
        (InvalidArgumentError)."""
        x = tf.convert_to_tensor(x)
        if not (x.dtype.is_integer or x.dtype.is_bool):
            raise ValueError(f"x must hold integer category indices, got dtype {x.dtype.name}")
        if x.dtype != tf.int32:
            x = events.check_range(x, "x", self.num_categories)
        return tf.cast(x, tf.int32)

    def sample(self, noise, method="fpi", evidence=None, evidence_mask=None):
        """Like `PredictiveSampler.sample`, through `sample_with_noise` / `sample_with_evidence`
        (bad noise is the library's ValueError before the graph sees it)."""
        noise = self.check_noise(noise)
        if evidence is None and evidence_mask is None:
            return self._result(self.signatures["sample_with_noise"](noise=noise, method=method))
        evidence, evidence_mask = self._evidence(noise, evidence, evidence_mask)
        return self._result(
            self.signatures["sample_with_evidence"](
                noise=noise, evidence=evidence, evidence_mask=evidence_mask, method=method
            )
        )

    def sample_from_seed(self, seed, batch_size, method="fpi", evidence=None, evidence_mask=None):
        """Like `PredictiveSampler.sample_from_seed`, through `sample` (no evidence)."""
        if evidence is not None or evidence_mask is not None:
            noise = noise_lib.gumbel_noise(
                (int(batch_size),) + self.event_shape + (self.num_categories,), seed
            )
            return self.sample(noise, method, evidence, evidence_mask)
        return self._result(
            self.signatures["sample"](
                seed=self._seed(seed),
                batch_size=tf.constant(batch_size, tf.int32),
                method=tf.constant(method),
            )
        )

    def sample_scheduled(self, noise, method="fpi", slots=32, evidence=None, evidence_mask=None):
        """Like `PredictiveSampler.sample_scheduled`, through `sample_many_with_evidence`."""
        noise = self.check_noise(noise)
        evidence, evidence_mask = self._evidence(noise, evidence, evidence_mask)
        return self._result(
            self.signatures["sample_many_with_evidence"](
                noise=noise,
                evidence=evidence,
                evidence_mask=evidence_mask,
                slots=tf.constant(slots, tf.int32),
                method=tf.constant(method),
            )
        )

    def sample_scheduled_from_seed(
        self, seed, num_samples, slots=32, method="fpi", evidence=None, evidence_mask=None
    ):
        """Like `PredictiveSampler.sample_scheduled_from_seed`, through `sample_many`."""
        if evidence is not None or evidence_mask is not None:
            noise = noise_lib.gumbel_noise(
                (int(num_samples),) + self.event_shape + (self.num_categories,), seed
            )
            return self.sample_scheduled(noise, method, slots, evidence, evidence_mask)
        return self._result(
            self.signatures["sample_many"](
                seed=self._seed(seed),
                num_samples=tf.constant(num_samples, tf.int32),
                slots=tf.constant(slots, tf.int32),
                method=tf.constant(method),
            )
        )

    def loop_function(self, method):
        """`(noise, evidence, evidence_mask) -> SampleResult` through the SavedModel."""
        self.check_method(method)
        method = tf.constant(method)
        with_noise = self.signatures["sample_with_noise"]
        with_evidence = self.signatures["sample_with_evidence"]

        def run(noise, evidence, evidence_mask):
            if not bool(tf.reduce_any(evidence_mask)):
                return self._result(with_noise(noise=noise, method=method))
            return self._result(
                with_evidence(
                    noise=noise, evidence=evidence, evidence_mask=evidence_mask, method=method
                )
            )

        return run

    def scheduled_loop_function(self, method):
        """`(noise, evidence, evidence_mask, slots) -> SampleResult` through the SavedModel."""
        self.check_method(method)
        method = tf.constant(method)
        scheduled = self.signatures["sample_many_with_evidence"]
        return lambda noise, evidence, evidence_mask, slots: self._result(
            scheduled(
                noise=noise,
                evidence=evidence,
                evidence_mask=evidence_mask,
                slots=tf.cast(slots, tf.int32),
                method=method,
            )
        )

    def logits(self, x):
        return self.signatures["logits"](x=self._x(x))["logits"]

    def log_prob(self, x):
        """`(log_prob [B] nats, bits_per_dim [B])`."""
        out = self.signatures["log_prob"](x=self._x(x))
        return out["log_prob"], out["bits_per_dim"]


def load_exported(path):
    """Loads `exported/<name>/<version>` (or `exported/<name>`: its latest version)."""
    return ExportedSampler(path)
