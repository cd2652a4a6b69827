"""Every command in README.md's code blocks is run by a test: here, or by the test `COMMANDS` names.

`readme_blocks()` reads README.md's fenced blocks; `readme_commands()` turns its ```bash blocks into
commands (`\\` continuations and lines inside an open quote joined, `#` comments dropped, whitespace
collapsed). `COMMANDS` maps each of them, as written, to how it is run, and
`test_the_readme_commands_are_the_tables` asserts that the two are the same set: a command added
to the README, or changed, fails the fast tier until the table says how it is run (`PYTHON_BLOCKS`
does the same for the ```python blocks, by their first line).

`Here`: a `python -m launch.X` command run in this process (`launch_here`), from the repository root
(commands that configure TensorFlow's runtime are `Elsewhere`, in a subprocess). Its `runs/`,
`exported/` and `data/` paths are moved into one directory for the module, so the commands chain as
in the README (train `runs/digits`, then sample, benchmark and export it); `extra` flags replace the
command's flag of the same name or are appended, and `why` says why. tfds datasets (no network here)
are read through `tfds.testing.mock_data`, which keeps the real tfds code path. `Elsewhere`: run by
the named test (or not at all, `where=()`), whose presence
`test_the_tests_named_for_readme_commands_exist` checks."""

import contextlib
import dataclasses
import json
import os
import re
import shlex
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from launchers import REPO, launch_here

README = os.path.join(REPO, "README.md")


@dataclasses.dataclass(frozen=True)
class Here:
    name: str  # the test id
    why: str
    extra: tuple = ()  # flags replacing the command's flag of the same name, or appended
    after: str | None = None  # the command (its name) whose run this one uses
    tfds: dict | None = None  # tfds.testing.mock_data(**tfds) around the run
    expect: str = ""  # in stdout
    files: tuple = ()  # written, relative to the module's directory
    error: str | None = None  # the command must fail with this in stderr, without a traceback
    absent: tuple = ()  # not written (relative to the module's directory)


@dataclasses.dataclass(frozen=True)
class Elsewhere:
    where: tuple  # "tests/test_x.py::test_name" or "Makefile::target"; () for nowhere
    why: str
    contains: tuple = ()  # text the named test's file (or the Makefile) holds
    paths: tuple = ()  # files of the repository the command uses


# A tiny ARM: 4 steps of 1 resnet x 8 filters, 1 validation batch (the demo presets train ~1.5 min).
TINY = (
    "--config.training.steps=4", "--config.model.filters=8", "--config.model.num_resnets=1",
    "--config.training.eval_batches=1",
)  # fmt: skip
BATCH_8 = ("--config.training.batch_size=8",)
# A tiny sequence ARM (Transformer): 4 steps of 1 block x 8, 1 validation batch.
TINY_BLOCKS = (
    "--config.training.steps=4", "--config.model.filters=8", "--config.model.num_layers=1",
    "--config.training.eval_batches=1",
)  # fmt: skip
# The paper presets (3 scales x 5 resnets x 162 filters, heads of 162): 1 scale, heads of 8
# filters; the 3-scale path is run by the digits28_binary command (a 3-scale model on 32x32x3
# costs ~20 s more to trace and check on 2 cores).
PAPER = TINY + ("--config.model.num_scales=1", "--config.forecast.filters=8")
MOCK_CIFAR = {"num_examples": 8}
TRAINED = {"launch.train": "test bpd", "launch.train_autoencoder": "test mse"}

COMMANDS = {
    # ---------------------------------------------------------------- the first block
    "make demo": Elsewhere(
        ("Makefile::demo", "tests/test_config.py::test_demo_presets_are_the_demo_configurations"),
        "not run by any test (7-10 min on 2 cores); the target exists and its presets are checked",
        contains=("bash launch/demo.sh",),
    ),
    "make test-fast": Elsewhere(
        ("Makefile::test-fast",), "the suite itself, fast tier (CI / developers); target checked"
    ),
    "make test": Elsewhere(("Makefile::test",), "CI's command, the suite itself; target checked"),
    # ---------------------------------------------------------------- Use it
    ".venv/bin/python -m launch.train --config=configs/digits.py --logdir=runs/digits": Here(
        "train-digits",
        "1500 steps of 2 resnets x 32 filters, batch 64 -> TINY, batch 8",
        extra=TINY + BATCH_8,
        expect="digits: step 4",
        files=("runs/digits/metrics.json", "runs/digits/config.json"),
    ),
    ".venv/bin/python -m launch.sample --model=runs/digits --method=fpi --num_samples=64 "
    "--batch_size=32": Here(
        "sample-digits",
        "as written, on the tiny runs/digits (~1 s)",
        after="train-digits",
        expect="method fpi: 64 samples in 32 slots",
        files=("runs/digits/samples/samples_fpi.npy",),
    ),
    ".venv/bin/python -m launch.benchmark --model=runs/digits --incremental": Here(
        "benchmark-digits",
        "10 seeds at batches 1 and 32, the TFP peer and 320 scheduled samples -> 1 seed at batches "
        "1 and 2, no peer, 4 samples in 2 slots; every method still runs plain and incremental",
        extra=(
            "--num_seeds=1",
            "--batch_sizes=1,2",
            "--tfp_peer=false",
            "--scheduled_samples=4",
            "--scheduled_slots=2",
        ),
        after="train-digits",
        expect="fpi (incremental)",
        files=("runs/digits/benchmark.json", "runs/digits/benchmark.md"),
    ),
    ".venv/bin/python -m launch.train --config=configs/digits28_binary.py --logdir=runs/binary "
    "--config.data.dataset=digits28_binary_centred": Here(
        "train-binary",
        "1000 steps of 2 resnets x 32 filters -> TINY; the 3 scales and batch 16 kept",
        extra=TINY,
        expect="digits28_binary_centred: step 4",
    ),
    # ---------------------------------------------------------------- Your own data
    "python -m launch.train --config=configs/digits.py --logdir=runs/fashion "
    "--config.data.dataset=tfds:fashion_mnist --config.data.image_key=image": Here(
        "train-tfds-fashion",
        "no network: mock_data, 8 examples per split with values 0..1 (so K = 2 and the "
        "autoregressive check of the new model is quick), through the real tfds:NAME source; "
        "TINY, batch 8",
        extra=TINY + BATCH_8,
        tfds={"num_examples": 8, "max_value": 1},
        expect="tfds:fashion_mnist: step 4",
    ),
    "python -m launch.train --config=configs/digits.py --logdir=runs/mine "
    "--config.data.dataset=data/mine.npz --config.data.num_categories=17": Here(
        "train-npz",
        "data/mine.npz: 40 random 8x8 images < 17, train only (validation and test carved); "
        "TINY, batch 8",
        extra=TINY + BATCH_8,
        expect="mine.npz: step 4",
    ),
    "python -m launch.train --config=configs/digits.py --logdir=runs/pics "
    "--config.data.dataset=data/pics --config.data.binarize=128": Here(
        "train-pics",
        "data/pics: 30 random 8x8 grey PNGs (the name hash gives every split some); TINY, batch 8",
        extra=TINY + BATCH_8,
        expect="pics: step 4",
    ),
    "python -m launch.train --config=configs/transformer_text.py --logdir=runs/tunes "
    "--config.data.dataset=data/tunes.npz --config.data.num_categories=128": Here(
        "train-sequences",
        "data/tunes.npz: 40 random sequences [16] < 128; 3000 steps of 4 blocks x 128 -> 4 steps "
        "of 1 block x 8, batch 8, 1 validation batch",
        extra=TINY_BLOCKS + BATCH_8,
        expect="tunes.npz: step 4",
    ),
    "python -m launch.train --logdir=runs/mine --config.training.steps=5000": Here(
        "resume-npz",
        "steps 5000 -> 6: resumes the 4-step runs/mine with its recorded config for 2 steps",
        extra=("--config.training.steps=6",),
        after="train-npz",
        expect="mine.npz: step 6",
    ),
    # ---------------------------------------------------------------- Presets
    "python -m launch.train --config=configs/paper_cifar10_5bit.py --logdir=runs/c5 "
    "--config.training.batch_size=32 --config.forecast.steps=5": Here(
        "train-paper-cifar10-5bit",
        "mock cifar10 (8 examples per split); PAPER; batch 32 and T = 5 as written",
        extra=PAPER,
        tfds=MOCK_CIFAR,
        expect="cifar10: step 4",
    ),
    # ---------------------------------------------------------------- Scale up
    "python -m launch.train --config=configs/paper_cifar10.py --logdir=runs/c10": Here(
        "train-paper-cifar10",
        "mock cifar10 (8 examples per split); PAPER, batch 8",
        extra=PAPER + BATCH_8,
        tfds=MOCK_CIFAR,
        expect="cifar10: step 4",
    ),
    "python -m launch.train --config=configs/paper_cifar10.py --logdir=runs/c10 "
    "--config.training.strategy=mirrored --config.training.mixed_precision=mixed_bfloat16 "
    "--config.training.jit_compile=true": Here(
        "train-paper-cifar10-mirrored-bf16-xla",
        "the README's runs/c10 again: resumes the command before for 2 steps (steps 6) under "
        "mirrored (this machine's one CPU), bfloat16 and XLA; mock cifar10, PAPER, batch 8",
        extra=PAPER + BATCH_8 + ("--config.training.steps=6",),
        after="train-paper-cifar10",
        tfds=MOCK_CIFAR,
        expect="cifar10: step 6",
    ),
    "python -m launch.train --config=configs/digits.py --logdir=runs/d2 "
    "--config.training.strategy=mirrored --config.training.cpu_replicas=2": Elsewhere(
        ("tests/test_distribute.py::test_mirrored_on_two_replicas_trains_the_same_model",),
        "2 logical CPU devices need a fresh process: that test's runs train configs/digits.py "
        "with --config.training.strategy=mirrored --config.training.cpu_replicas=2 (tiny) and "
        "compare with 1 device",
        contains=('"--config.training.strategy=mirrored", "--config.training.cpu_replicas=2"',),
    ),
    'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": '
    '{"type": "worker", "index": 0}}\' python -m launch.train '
    "--config=configs/paper_imagenet32.py --logdir=/shared/runs/i32 "
    "--config.training.strategy=multi_worker": Elsewhere(
        (
            "tests/test_distribute.py::"
            "test_multi_worker_trains_checkpoints_and_resumes_with_only_the_chief_writing",
        ),
        "host0 and host1 are not here; that test runs the multi_worker path with 2 local workers, "
        "each with its TF_CONFIG (configs/digits.py); here its TF_CONFIG is checked to be JSON "
        "naming worker 0 the chief (test_the_readme_tf_config_makes_worker_0_the_chief)",
        contains=("TF_CONFIG", "--config.training.strategy=multi_worker"),
    ),
    "TPU_NAME=my-tpu python -m launch.train --config=configs/paper_svhn.py "
    "--logdir=gs://bucket/runs/svhn --config.training.strategy=tpu": Here(
        "train-tpu-is-one-clear-error",
        "no TPU: the documented one clear error before the run directory is written; "
        "gs://bucket/runs/svhn -> runs/svhn; mock svhn_cropped and PAPER in case it got further",
        extra=("--logdir=runs/svhn",) + PAPER + BATCH_8,
        tfds=MOCK_CIFAR,
        error="strategy=tpu needs a TPU",
        absent=("runs/svhn",),
    ),
    "python -m launch.sample --model=runs/c10 --num_samples=256 --batch_size=32 "
    "--strategy=mirrored": Here(
        "sample-paper-cifar10-mirrored",
        "256 samples of 3072 variables take ~45 s -> 4 samples in 2 slots; mirrored over this "
        "machine's one CPU (no logical devices: in this process)",
        extra=("--num_samples=4", "--batch_size=2"),
        after="train-paper-cifar10",
        expect="method fpi: 4 samples in 2 slots",
        files=("runs/c10/samples/samples_fpi.npy",),
    ),
    "python -m launch.benchmark --model=runs/digits --strategy=mirrored --cpu_replicas=2": (
        Elsewhere(
            (
                "tests/test_distribute.py::"
                "test_the_benchmark_launcher_spreads_each_batch_over_two_replicas",
            ),
            "2 logical CPU devices need a fresh process: that test runs launch.benchmark with "
            "--strategy=mirrored --cpu_replicas=2 on a tiny digits run and compares with 1 device",
            contains=('"launch.benchmark"', '["--cpu_replicas=2"]', "--strategy={strategy}"),
        )
    ),
    # ---------------------------------------------------------------- Serving
    ".venv/bin/python -m launch.export --model=runs/digits --name=digits": Here(
        "export-digits",
        "+ --export_dir=exported: the default is relative to the repository root, where "
        "launch_here runs and exported/digits/1 ships; here it is the module's exported/",
        extra=("--export_dir=exported",),
        after="train-digits",
        expect="exported ",
        files=("exported/digits/1/saved_model.pb",),
    ),
    ".venv/bin/python -m launch.sample --model=exported/digits --method=fpi": Here(
        "sample-export",
        "+ --output_dir=runs/samples/digits_v1, the default for this export, which is relative "
        "to the repository root: moved to the module's directory",
        extra=("--output_dir=runs/samples/digits_v1",),
        after="export-digits",
        expect="method fpi: 16 samples",
        files=("runs/samples/digits_v1/samples_fpi.npy",),
    ),
    "saved_model_cli show --dir exported/digits/1 --all": Elsewhere(
        ("tests/test_export.py::test_saved_model_cli_shows_and_runs_the_contract",),
        "that test runs `saved_model_cli show --dir <export> --all` on a fresh export and checks "
        "every signature; here: the shipped exported/digits/1 the command names exists",
        contains=('"show", "--dir"', '"--all"'),
        paths=("exported/digits/1/saved_model.pb",),
    ),
    # ---------------------------------------------------------------- Scale up, inline
    "python -m launch.distribute_figures --steps=300": Here(
        "distribute-figures",
        "300 steps of 3 settings -> 2 steps of the one_device setting, a tiny model by --override "
        "(the launcher trains it in a subprocess; the mirrored and 2-worker settings are run by "
        "tests/test_distribute.py); its default output_dir, runs/distribute_figures, named to move "
        "it",
        extra=(
            "--steps=2",
            "--settings=one_device",
            "--output_dir=runs/distribute_figures",
            "--override=--config.model.filters=8",
            "--override=--config.model.num_resnets=1",
            "--override=--config.training.eval_batches=1",
        ),  # fmt: skip
        expect="| one_device | 1 | 2 |",
        files=("runs/distribute_figures/table.md",),
    ),
    # ---------------------------------------------------------------- Your own ARM, inline
    "TFPS_ARM_MODULES=my_arm python -m launch.train --config=configs/default.py "
    "--config.model.arch=mixer --config.data.dataset=text_python --logdir=runs/mixer": Here(
        "train-own-arm",
        "my_arm.py: the README's own-ARM block up to its register_arm call (`USER_MODULE`), on "
        "the path; the default preset -> 2 steps, width (filters) 8, batch 8, 1 validation batch",
        extra=(
            "--config.training.steps=2",
            "--config.model.filters=8",
            "--config.training.batch_size=8",
            "--config.training.eval_batches=1",
        ),  # fmt: skip
        expect="text_python: step 2",
        files=("runs/mixer/config.json",),
    ),
    # ---------------------------------------------------------------- Any order (FARM)
    "python -m launch.train --config=configs/farm_made_digits28.py --logdir=runs/farm": Here(
        "train-farm",
        "2000 steps of 2 x 1000 hidden units, batch 64 -> 4 steps of 2 x 8, batch 8, 1 "
        "validation batch; the 8 raster orderings, the objective and the data kept",
        extra=TINY_BLOCKS + BATCH_8 + ("--config.model.num_layers=2",),
        expect="digits28_binary_centred: step 4",
        files=("runs/farm/metrics.json",),
    ),
    "python -m launch.inpaint --model=runs/farm --occlusion=best --num_masks=4": Here(
        "inpaint-farm",
        "16 test images -> 2, the 4 masks kept, on the tiny runs/farm",
        extra=("--num_images=2",),
        after="train-farm",
        expect="| L2 per occluded pixel |",
        files=("runs/farm/inpaint/inpaint_best.png", "runs/farm/inpaint/inpaint_best.md"),
    ),
    "python -m launch.farm_sampling --model=runs/farm --num_samples=360 --ks=1,2,4,8": Here(
        "farm-sampling",
        "360 samples -> 4, 600 classifier steps -> 20, on the tiny runs/farm (its 8 orderings: "
        "every k kept)",
        extra=("--num_samples=4", "--classifier_steps=20"),
        after="train-farm",
        expect="| FARM parallel, k=8 | NO (approximate) |",
        files=("runs/farm/farm_sampling/farm_sampling.md",),
    ),
    # ---------------------------------------------------------------- Anytime sampling
    "python -m launch.train_autoencoder --config=configs/anytime_autoencoder_digits32.py "
    "--logdir=runs/anytime_ae": Here(
        "train-anytime-autoencoder",
        "1500 steps of width 64, batch 128 -> 4 steps of width 8, batch 8, 1 evaluation batch; "
        "the ordered channel code of 16 codes kept",
        extra=(
            "--config.training.steps=4",
            "--config.model.width=8",
            "--config.training.eval_batches=1",
        )
        + BATCH_8,  # fmt: skip
        expect="digits32: step 4",
        files=("runs/anytime_ae/metrics.json",),
    ),
    "python -m launch.train --config=configs/anytime_prior.py "
    "--config.data.latents_from=runs/anytime_ae --logdir=runs/anytime_prior": Here(
        "train-anytime-prior",
        "3000 steps of 4 blocks x 128 -> 4 steps of 1 block x 8, batch 8, on the tiny "
        "runs/anytime_ae",
        extra=TINY_BLOCKS + BATCH_8,
        after="train-anytime-autoencoder",
        expect="step 4",
    ),
    "python -m launch.anytime --model=runs/anytime_prior --num_codes=4,8,12,16": Here(
        "anytime",
        "8 samples -> 2, on the tiny runs/anytime_prior",
        extra=("--num_samples=2",),
        after="train-anytime-prior",
        expect="| 16 | 100% |",
        files=("runs/anytime_prior/anytime/anytime.png",),
    ),
    # ---------------------------------------------------------------- Latent space
    "bash launch/latent_demo.sh": Elsewhere(
        ("tests/test_latent.py::test_launchers_train_sample_and_benchmark_a_latent_arm",),
        "the script itself is NOT run by any test (minutes); that test runs its launchers "
        "(train_autoencoder, train, sample, benchmark) with its two presets, shortened",
        contains=("configs/latent_autoencoder.py", "configs/latent_arm.py"),
        paths=("launch/latent_demo.sh",),
    ),
}

OWN_ARM_BLOCK = "import keras, numpy as np, tensorflow as tf"
PYTHON_BLOCKS = {  # the first line of each ```python block
    OWN_ARM_BLOCK: Elsewhere(
        ("tests/test_arms.py::test_the_readme_example_of_an_own_arm_runs",),
        "the own-ARM example between the own-arm markers, run whole in a temporary directory",
        contains=("<!-- own-arm: begin -->",),
    ),
    "import tfps": Elsewhere(
        ("tests/test_readme.py::test_the_from_python_block_runs",),
        "run here on the README's runs/digits (train-digits)",
    ),
}


# ----------------------------------------------------------------------------- reading README.md


def readme_blocks():
    """`[(language, text)]` of README.md's fenced code blocks."""
    with open(README) as f:
        text = f.read()
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def _code_of(line, quote):
    """`(line without its # comment, the quote still open at its end)`; `quote` is open at the
    start."""
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], None
    return line, quote


def readme_commands():
    """The commands of the ```bash blocks, whitespace collapsed, in README order."""
    commands = []
    for language, text in readme_blocks():
        if language != "bash":
            continue
        pending, quote = "", None
        for line in text.splitlines():
            code, quote = _code_of(line, quote)
            if quote is None and code.rstrip().endswith("\\"):
                pending += code.rstrip()[:-1] + " "
            elif quote is not None:
                pending += code + " "
            else:
                command = " ".join((pending + code).split())
                pending = ""
                if command:
                    commands.append(command)
    return commands


# A command written inline in README prose (a `code span`): optional VAR=value words, then python,
# .venv/bin/python, bash or make.
INLINE_COMMAND = re.compile(r"^([A-Z_][A-Z0-9_]*=\S+ )*(\.venv/bin/)?(python|bash|make)( |$)")


def readme_inline_commands():
    """The commands written inline in README prose (outside the fenced blocks), whitespace
    collapsed (a span may break across lines), in README order."""
    with open(README) as f:
        text = re.sub(r"^```.*?^```$", "", f.read(), flags=re.M | re.S)
    spans = (" ".join(span.split()) for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", text))
    return [span for span in spans if INLINE_COMMAND.match(span)]


def readme_python_blocks():
    """`{first line: code}` of the ```python blocks (their first lines differ)."""
    blocks = [text for language, text in readme_blocks() if language == "python"]
    by_first_line = {text.split("\n", 1)[0]: text for text in blocks}
    assert len(by_first_line) == len(blocks), "two ```python blocks start alike: key them apart"
    return by_first_line


# ----------------------------------------------------------------------------- running them


def _parsed(command):
    """`(environment, module, flags)` of `[NAME=value ...] python -m module flags...`."""
    tokens = shlex.split(command)
    env = {}
    while re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        name, value = tokens.pop(0).split("=", 1)
        env[name] = value
    python, dash_m, module, *flags = tokens
    assert python in ("python", ".venv/bin/python") and dash_m == "-m", command
    return env, module, flags


MOVED = ("runs", "exported", "data")  # relative to the repository root, where the launchers run


def _flags(flags, extra, root):
    """`flags` with `extra` replacing the flag of the same name (or appended: all of them, for a
    repeatable flag), and the values runs/..., exported/... and data/... (`MOVED`) moved into
    `root`."""
    names = {f.split("=", 1)[0] for f in flags}
    replacing = {f.split("=", 1)[0]: f for f in extra if f.split("=", 1)[0] in names}
    merged = [replacing.get(f.split("=", 1)[0], f) for f in flags]
    merged += [f for f in extra if f.split("=", 1)[0] not in names]
    moved = []
    for flag in merged:
        name, equals, value = flag.partition("=")
        if value.split("/")[0] in MOVED:
            value = os.path.join(root, value)
        moved.append(name + equals + value)
    return moved


# The module the TFPS_ARM_MODULES command names: the own-ARM block of the README up to the end of
# its `tfps.register_arm(...)` call (the line after it checks the model).
USER_MODULE = "my_arm"


def _user_module_source():
    code = readme_python_blocks()[OWN_ARM_BLOCK]
    return code[: code.index("\ntfps.check_autoregressive(")] + "\n"


@contextlib.contextmanager
def _user_modules(env, root):
    """With `root` (holding my_arm.py) on the path and the architectures the module registers
    forgotten, so that the launcher's import registers them as in a fresh process; restored
    after."""
    if "TFPS_ARM_MODULES" not in env:
        yield
        return
    from tfps.models import arms  # noqa: PLC0415

    saved = dict(arms.ARCHITECTURES)
    arms.ARCHITECTURES.pop("mixer", None)
    sys.modules.pop(USER_MODULE, None)
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path.remove(root)
        sys.modules.pop(USER_MODULE, None)
        arms.ARCHITECTURES.clear()
        arms.ARCHITECTURES.update(saved)


def _run(command, how, root):
    env, module, flags = _parsed(command)
    flags = _flags(flags, how.extra, root)
    saved = {name: os.environ.get(name) for name in env}
    mock = tfds.testing.mock_data(**how.tfds) if how.tfds else contextlib.nullcontext()
    os.environ.update(env)
    try:
        with mock, _user_modules(env, root):
            return launch_here(module, *flags)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _write_data(data):
    """The user data the "Your own data" commands name, small: data/mine.npz (40 images 8x8 < 17),
    data/pics (30 grey 8x8 PNGs), data/tunes.npz (40 sequences [16] < 128)."""
    rng = np.random.default_rng(0)
    (data / "pics").mkdir(parents=True)
    np.savez(data / "mine.npz", train=rng.integers(0, 17, (40, 8, 8)))
    np.savez(data / "tunes.npz", train=rng.integers(0, 128, (40, 16)))
    for i in range(30):
        pixels = rng.integers(0, 256, (8, 8)).astype(np.uint8)
        Image.fromarray(pixels).save(data / "pics" / f"pic{i:02d}.png")


BY_NAME = {how.name: command for command, how in COMMANDS.items() if isinstance(how, Here)}


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """`run(command) -> CompletedProcess`, each command run once (after the one it needs) in one
    directory for the module, `run.root`."""
    root = tmp_path_factory.mktemp("readme")
    _write_data(root / "data")
    (root / f"{USER_MODULE}.py").write_text(_user_module_source())
    results = {}

    def run(command):
        if command not in results:
            how = COMMANDS[command]
            if how.after:
                before = run(BY_NAME[how.after])
                assert before.returncode == 0, f"needs {how.after}, which failed"
            results[command] = _run(command, how, str(root))
        return results[command]

    run.root = root
    before = _repository_outputs()
    yield run
    assert _repository_outputs() == before, "a README command wrote into the repository"


def _repository_outputs():
    """What the commands would write into the repository if a path were not moved: the `MOVED`
    paths they name that exist there, and the versions of the exports of exported/digits."""
    named = {
        value
        for command, how in COMMANDS.items()
        if isinstance(how, Here)
        for flag in _parsed(command)[2] + list(how.extra)
        for value in [flag.partition("=")[2]]
        if value.split("/")[0] in MOVED
    }
    exported = os.path.join(REPO, "exported", "digits")
    return {p for p in named if os.path.exists(os.path.join(REPO, p))} | set(os.listdir(exported))


# ----------------------------------------------------------------------------- the tests


def test_the_readme_commands_are_the_tables():
    blocks = readme_commands()
    assert len(blocks) == len(set(blocks)), "a README command twice: give the table one key"
    commands = blocks + [c for c in dict.fromkeys(readme_inline_commands()) if c not in blocks]
    missing = [c for c in commands if c not in COMMANDS]
    assert not missing, f"README commands without a table entry (add how they run): {missing}"
    assert not set(COMMANDS) - set(commands), f"not in README: {set(COMMANDS) - set(commands)}"
    assert set(readme_python_blocks()) == set(PYTHON_BLOCKS)
    assert {language for language, _ in readme_blocks()} == {"bash", "python"}


def test_commands_are_read_as_a_shell_reads_them():
    assert readme_commands()[:3] == ["make demo", "make test-fast", "make test"]
    assert _code_of("a --x='#1' # note", None) == ("a --x='#1' ", None)
    assert _code_of("""A='{"b": [1,""", None) == ("""A='{"b": [1,""", "'")
    merged = _flags(["--a=runs/x", "--b=1"], ["--b=2", "--c=3", "--d=exported", "--c=4"], "/r")
    assert merged == ["--a=/r/runs/x", "--b=2", "--c=3", "--d=/r/exported", "--c=4"]
    inline = readme_inline_commands()
    assert "python -m launch.distribute_figures --steps=300" in inline
    assert any(c.startswith("TFPS_ARM_MODULES=my_arm python -m launch.train") for c in inline)
    assert not any(c.startswith("launch/") for c in inline)  # a file named, not a command


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [c for c, how in COMMANDS.items() if isinstance(how, Here)], ids=list(BY_NAME)
)
def test_the_readme_command_runs(command, readme_run):
    how = COMMANDS[command]
    result = readme_run(command)
    if how.error:
        assert result.returncode != 0, result.stdout[-2000:]
        assert how.error in result.stderr, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        assert how.expect in result.stdout, result.stdout[-3000:]
        launcher = command.split(" -m ")[-1].split()[0]
        if launcher in ("launch.train", "launch.train_autoencoder"):
            assert TRAINED[launcher] in result.stdout
    for path in how.files:
        assert (readme_run.root / path).exists(), path
    for path in how.absent:
        assert not (readme_run.root / path).exists(), path


@pytest.mark.slow
def test_the_from_python_block_runs(readme_run, monkeypatch):
    assert readme_run(BY_NAME["train-digits"]).returncode == 0
    monkeypatch.chdir(readme_run.root)
    namespace = {"__name__": "readme_from_python"}
    exec(compile(readme_python_blocks()["import tfps"], "README.md", "exec"), namespace)
    result, sampler, eps = namespace["result"], namespace["sampler"], namespace["eps"]
    assert result.samples.shape == (16, 8, 8, 1) and result.converged_at.shape == (16, 8, 8, 1)
    ancestral = sampler.sample(eps, "ancestral").samples
    np.testing.assert_array_equal(result.samples.numpy(), ancestral.numpy())


def _elsewhere():
    return {
        c: how for c, how in {**COMMANDS, **PYTHON_BLOCKS}.items() if isinstance(how, Elsewhere)
    }


@pytest.mark.parametrize("command", list(_elsewhere()))
def test_the_tests_named_for_readme_commands_exist(command):
    how = _elsewhere()[command]
    texts = ""
    for place in how.where:
        path, name = place.split("::")
        with open(os.path.join(REPO, path)) as f:
            text = f.read()
        pattern = rf"^{re.escape(name)}:" if path == "Makefile" else rf"^def {re.escape(name)}\("
        assert re.search(pattern, text, re.M), place
        texts += text
    for needed in how.contains:
        assert needed in texts, (needed, how.where)
    for path in how.paths:
        assert os.path.exists(os.path.join(REPO, path)), path


def test_the_layout_table_names_every_module():
    with open(README) as f:
        text = f.read()
    layout = text[text.index("## Layout") : text.index("## Inspecting forecasts")]
    for room in sorted(os.listdir(os.path.join(REPO, "tfps"))):
        folder = os.path.join(REPO, "tfps", room)
        if not os.path.isdir(folder) or room.startswith("__"):
            continue
        [row] = [line for line in layout.splitlines() if line.startswith(f"| `tfps/{room}/`")]
        modules = {n[:-3] for n in os.listdir(folder) if n.endswith(".py") and n != "__init__.py"}
        missing = sorted(m for m in modules if f"`{m}`" not in row)
        assert not missing, f"README's Layout row of tfps/{room}/ misses {missing}"


def test_the_readme_tf_config_makes_worker_0_the_chief():
    [command] = [c for c in COMMANDS if c.startswith("TF_CONFIG=")]
    env, module, flags = _parsed(command)
    tf_config = json.loads(env["TF_CONFIG"])
    assert tf_config["task"] == {"type": "worker", "index": 0}
    assert len(tf_config["cluster"]["worker"]) == 2 and "chief" not in tf_config["cluster"]
    assert module == "launch.train" and "--config.training.strategy=multi_worker" in flags
