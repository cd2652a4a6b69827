"""Data for training, opened through one entry: `tfps.data.open(config, encoder=None)`
(`entry`) -> `Opened` (`info`, `load(split)`, `description`), for every source: the embedded and
tfds sets (`builtin`, `photos`, `text`), the user's own data (`sources`: tfds, `.npz`, image
folders), everything that reads tensorflow-datasets (`tfds_source`), a frozen autoencoder's latents
(`latents`, given its encoder) and the checks that name bad data (`checks`). Imports no other room;
`import tfps.data` is free of TensorFlow, `open` is imported on first use.
"""


def __getattr__(name):
    """`open`, imported from `tfps.data.entry` on first use."""
    if name == "open":
        from tfps.data.entry import open as open_data

        globals()[name] = open_data
        return open_data
    raise AttributeError(f"module 'tfps.data' has no attribute {name!r}")
