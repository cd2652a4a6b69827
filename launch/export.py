"""Export a trained ARM as a SavedModel with tfps's serving contract (docs/serving.md).

    python -m launch.export --model=runs/digits                 # -> exported/digits/<next version>
    python -m launch.export --model=runs/digits --name=digits --version=1 --overwrite

Writes `<export_dir>/<name>/<version>/` (TF Serving layout). Without --version the export takes the
next version number (max + 1); the SavedModel is written aside and renamed into place at the end,
so a failed export leaves the existing versions as they were. Load it with plain TensorFlow
(`tf.saved_model.load(path).signatures["sample"]`), `saved_model_cli`, TF Serving, or
`tfps.serving.exported_sampler.load_exported(path)`; `python -m launch.sample --model=<export>`
samples from it.

--incremental=false (default) exports plain ARM calls, true incremental ones (a PixelCNN), and
auto times `fpi` at batch 1 both ways on this machine and exports the faster (docs/incremental.md):
the default gives the same graph for the same checkpoint on any machine. The samples and the
serving contract are the same either way; the choice (and auto's timings) are recorded in the
metadata (`incremental`).
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/export.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model",
    None,
    "The training run directory (its latest checkpoint) or a checkpoint prefix to export.",
    required=True,
)
flags.DEFINE_string(
    "export_dir",
    "exported",
    "Root of the exports: the model goes to <export_dir>/<name>/<version>.",
)
flags.DEFINE_string(
    "name",
    None,
    "Model name, the directory under --export_dir (default: the run's dataset name, its file "
    "name for your own data: tunes.npz -> tunes).",
)
flags.DEFINE_integer(
    "version", None, "Version number to write (default: the next free one).", lower_bound=1
)
flags.DEFINE_bool("overwrite", False, "Replace --version if it exists already.")
flags.DEFINE_bool("jit_compile", False, "Compile the exported sampling loops with XLA.")
flags.DEFINE_enum(
    "incremental",
    "false",
    ["auto", "true", "false"],
    "Whether the sampling signatures make incremental ARM calls (same samples): false (plain, "
    "deterministic), true (a PixelCNN), or auto: time fpi both ways at batch 1 on this machine "
    "and keep the faster (PixelCNN; plain for other ARMs).",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.overwrite and FLAGS.version is None:
        raise app.UsageError("--overwrite needs --version (a new export never replaces one)")
    from tfps.serving import export, incremental_choice

    try:
        path = export.export_trained(
            FLAGS.model,
            FLAGS.export_dir,
            name=FLAGS.name,
            version=FLAGS.version,
            overwrite=FLAGS.overwrite,
            jit_compile=FLAGS.jit_compile,
            incremental=FLAGS.incremental,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        raise app.UsageError(str(e)) from e
    metadata = export.read_metadata(path)
    training = metadata.get("training") or {}
    size = sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )
    bpd = training.get("test_bpd")
    print(
        f"exported {path} ({size / 2**20:.2f} MiB): "
        f"{(training.get('dataset') or {}).get('name', '?')} step {training.get('step')}, "
        f"test bpd {'?' if bpd is None else f'{bpd:.4f}'}; event shape "
        f"{metadata.get('event_shape', metadata['image_shape'])}, "
        f"K = {metadata['num_categories']}; methods "
        f"{', '.join(metadata['methods'])}; "
        f"{incremental_choice.describe(metadata.get('incremental'))}",
        flush=True,
    )


if __name__ == "__main__":
    app.run(main)
