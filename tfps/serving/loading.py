"""One loader for "a training run directory, a checkpoint prefix or an exported SavedModel".

`load` returns a `Loaded` record whose `sampler` has the interface of
`tfps.sampling.predictive.PredictiveSampler` either way: the library sampler with the run's learned
forecasting heads [1, sec. 2.4], or a `tfps.serving.exported_sampler.ExportedSampler` that runs the
export's own sampling loops (their `jit_compile` was fixed at export).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from typing import Any, NamedTuple, Optional

from tfps.models import ordered_code
from tfps.sampling import predictive, prefix
from tfps.serving import decoder as decoder_lib
from tfps.serving import export, exported_sampler
from tfps.train import training


class Loaded(NamedTuple):
    """A loaded model, ready to sample, benchmark or describe.

    sampler: a `PredictiveSampler` (run) or an `ExportedSampler` (export).
    description: the run's config dict (`tfps.train.training.load_trained`) or the export's
    metadata. architecture: the model config (`model_config()` of the ARM, with its `arch`;
    `tfps.models.arms`). heads: the run's learned forecasting heads, or None (none trained, or an
    export). decoder: the `tfps.serving.decoder.LatentDecoder` of an ARM on autoencoder latents
    [1, sec. 4.2], else None.
    is_export: True for a SavedModel.
    step: the training step of the checkpoint (0 if unknown).
    """

    sampler: Any
    description: dict
    architecture: dict
    heads: Optional[Any]
    decoder: Optional[Any]
    is_export: bool
    step: int

    @property
    def training(self):
        """The run's config, or the `training` section of an export's metadata."""
        if self.is_export:
            return self.description.get("training") or {}
        return self.description


def training_step(description):
    """The training step of a run config or of an export's metadata, else 0."""
    step = description.get("step")
    if step is None:
        step = (description.get("training") or {}).get("step")
    return int(step or 0)


def load(path, jit_compile=False, export_decoder=False, incremental=False):
    """Loads a run directory (its latest checkpoint), a checkpoint prefix, or an export
    (`exported/<name>/<version>`, or `exported/<name>` for its latest version).

    Args:
      path: where the model is.
      jit_compile: compile the library's sampling loops with XLA (an export keeps its own).
      export_decoder: also load, for an export of an ARM on latents, the decoder of the
        autoencoder checkpoint its metadata names (else an export's `decoder` is None).
      incremental: the library sampler makes incremental ARM calls (`tfps.sampling.incremental`); an
        export's signatures make the calls chosen at export (its sampler's `incremental`, the
        metadata's `incremental`), so it takes no `incremental` (ValueError).

    Returns:
      A `Loaded`.

    Raises:
      FileNotFoundError (`tfps.train.rundir.CheckpointNotFoundError`) when nothing is at `path`, and
      ValueError (`tfps.train.rundir.CheckpointError`, a broken export) when it cannot be loaded.
    """
    if export.is_export(path):
        if incremental:
            raise ValueError(
                f"{path} is an export, whose signatures make the ARM calls chosen at export "
                "(launch.export --incremental); incremental calls here need a run directory"
            )
        exported = exported_sampler.load_exported(path)
        metadata = exported.metadata
        decoder = decoder_lib.decoder_for(metadata) if export_decoder else None
        return Loaded(
            exported, metadata, metadata["model"], None, decoder, True, training_step(metadata)
        )
    model, config = training.load_trained(path)
    heads = config.get("forecast_heads")
    sampler = predictive.sampler_for_model(
        model, jit_compile=jit_compile, heads=heads, incremental=incremental
    )
    return Loaded(
        sampler,
        config,
        model.model_config(),
        heads,
        decoder_lib.decoder_for(config),
        False,
        training_step(config),
    )


def load_code_prior(path):
    """`(prior, decoder, config)` of a run directory (or checkpoint) of a prior over a channel code
    (`tfps.models.ordered_code`): the ARM, the `LatentDecoder` of its autoencoder and the run's
    config. ValueError for an export or any other ARM."""
    if export.is_export(path):
        raise ValueError(
            f"{path} is an export: sampling a prefix of the code needs the prior's run directory "
            "(an export samples within a budget instead: its sample_within_budget signature)"
        )
    prior, config = training.load_trained(path)
    decoder = decoder_lib.decoder_for(config)
    if decoder is None or decoder.prefix_function is None:
        what = "is an ARM on data" if decoder is None else "has an autoencoder of latent pixels"
        raise ValueError(
            f"{path}: anytime sampling needs a prior over a channel code (an autoencoder with "
            f"quantization='channel'); this run {what}"
        )
    return prior, decoder, config


def load_prefix(path, num_codes, jit_compile=False):
    """`(Loaded, j)` for the first j codes of a prior over a channel code (`load_code_prior`):
    `num_codes` is j or a fraction of the code (`tfps.models.ordered_code.num_codes_of`). The
    sampler is the prefix view's (`tfps.sampling.prefix.prefix_sampler`: every method samples the
    first j codes of the prior's ancestral sample, exactly); the decoder a
    `tfps.serving.decoder.PrefixDecoder`.
    """
    prior, decoder, config = load_code_prior(path)
    j = ordered_code.num_codes_of(num_codes, decoder.latent_shape[0])
    sampler = prefix.prefix_sampler(prior, j, jit_compile=jit_compile)
    loaded = Loaded(
        sampler, config, prior.model_config(), None, decoder.prefix(j), False, training_step(config)
    )
    return loaded, j
