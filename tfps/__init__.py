"""tfps: predictive sampling with forecasting autoregressive models [1].

The public API is `__all__`; everything else may change without notice. `import tfps` is free of
TensorFlow: each name is imported from its room on first use.

    sampler = tfps.sampler_for_model(model)            # an ARM of the protocol (tfps.models.arms)
    sampler = tfps.from_logits_fn(keras_model, (28, 28, 1), 2)   # or any x -> logits
    result = sampler.sample_from_seed(0, 16, "fpi")    # the ancestral samples, fewer ARM calls
    tfps.train_arm(tfps.TrainConfig(dataset="digits"), "runs/digits")    # resumable
    loaded = tfps.load("runs/digits")                  # a run directory or an export
    tfps.export("runs/digits", "exported/digits")      # a versioned SavedModel

The errors to catch are public too: `CheckpointError` (a run's checkpoints missing or corrupt),
`RunDirectoryLockedError` (another process trains into the run), `WorkerLostError` (a
multi-worker run lost a worker), `ExportError` (a SavedModel that cannot be loaded),
`IncompleteSampleError` (a sampling loop that ended early) and `NotAutoregressiveError`.

The rooms (subpackages), each importing only those below it: `serving` (SavedModels, loading),
`evaluation` (timing, benchmarks, summaries), `train` (configs, the training loop), `distribute`
(tf.distribute), `data` (datasets), `models` (the ARMs) and `sampling` (the samplers).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

__version__ = "0.1.0"

# Public name -> (module under tfps, attribute).
_API = {
    # Sampling.
    "PredictiveSampler": ("sampling.predictive", "PredictiveSampler"),
    "SampleResult": ("sampling.predictive", "SampleResult"),
    "Sampler": ("sampling.interface", "Sampler"),
    "sampler_for_model": ("sampling.predictive", "sampler_for_model"),
    "from_logits_fn": ("sampling.adapter", "from_logits_fn"),
    "LogitsFunctionARM": ("sampling.adapter", "LogitsFunctionARM"),
    "gumbel_noise": ("sampling.noise", "gumbel_noise"),
    # Models.
    "PixelCNN": ("models.pixelcnn", "PixelCNN"),
    "register_arm": ("models.arms", "register"),
    "check_autoregressive": ("models.causality", "check_autoregressive"),
    "NotAutoregressiveError": ("models.causality", "NotAutoregressiveError"),
    # Training.
    "TrainConfig": ("train.config", "TrainConfig"),
    "AutoencoderConfig": ("train.config", "AutoencoderConfig"),
    "train_arm": ("train.training", "train"),
    "train_autoencoder": ("train.autoencoder_training", "train_autoencoder"),
    # Serving.
    "load": ("serving.loading", "load"),
    "export": ("serving.export", "export_trained"),
    "export_model": ("serving.export", "export_model"),
    "load_exported": ("serving.exported_sampler", "load_exported"),
    "ExportedSampler": ("serving.exported_sampler", "ExportedSampler"),
    # Errors a user catches.
    "IncompleteSampleError": ("sampling.predictive", "IncompleteSampleError"),
    "CheckpointError": ("train.checkpoints", "CheckpointError"),
    "RunDirectoryLockedError": ("train.run_lock", "RunDirectoryLockedError"),
    "WorkerLostError": ("distribute.strategies", "WorkerLostError"),
    "ExportError": ("serving.exported_sampler", "ExportError"),
}

__all__ = sorted(_API)


def __getattr__(name):
    """The public names, imported on first use."""
    if name in _API:
        import importlib

        module, attribute = _API[name]
        value = getattr(importlib.import_module(f"tfps.{module}"), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfps' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
