"""Training speed and loss under each tf.distribute setting of one machine, as a Markdown table.

    python -m launch.distribute_figures --config=configs/digits.py --steps=300 \
        --output_dir=runs/distribute_figures

Trains the same preset three times from scratch with `launch/train.py`, one run after another:
on one device (`default`), on `mirrored` over 2 logical CPU devices (`cpu_replicas=2`), and as
2 workers (`multi_worker`: two processes on 127.0.0.1 with free ports, each with its own
`TF_CONFIG`; worker 0 is the chief and writes the run). Every run has the preset's global batch
(split over the replicas, `tfps.distribute.strategies`) and dropout 0, so the three train the same
model up to float rounding. Then prints, and writes to `<output_dir>/table.md`, one row per run:
replicas, steps, steps/s (of the whole run, the first step's tracing included), the final train bpd
(mean over the last log interval), validation and test bpd, from each run's metrics.json.

The runs go to `<output_dir>/{one_device,mirrored_2,workers_2}`, which must not exist yet (a
resumed run would time only its last steps). Extra `--config.<section>.<field>=v` overrides of
the preset go through `--override`.
"""

import json
import os
import socket
import subprocess
import sys

if __package__ in (None, ""):  # `python launch/distribute_figures.py`: make the root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name: (replicas, the training flags of the setting, worker processes)
SETTINGS = {
    "one_device": (1, ("--config.training.strategy=default",), 1),
    "mirrored_2": (
        2,
        ("--config.training.strategy=mirrored", "--config.training.cpu_replicas=2"),
        1,
    ),
    "workers_2": (2, ("--config.training.strategy=multi_worker",), 2),
}

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "configs/digits.py", "The preset every run trains.")
flags.DEFINE_integer("steps", 300, "Training steps of every run.", lower_bound=1)
flags.DEFINE_string("output_dir", "runs/distribute_figures", "Where the runs and table.md go.")
flags.DEFINE_list("settings", list(SETTINGS), f"Which runs, of {', '.join(SETTINGS)}.")
flags.DEFINE_multi_string(
    "override", [], "A further --config.<section>.<field>=v for every run (repeatable)."
)


@flags.validator("settings", f"settings must be among {', '.join(SETTINGS)}")
def _check_settings(values):
    return bool(values) and all(v in SETTINGS for v in values)


def free_ports(count, host="127.0.0.1"):
    """`count` distinct ports free on `host` now (all bound at once, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def train(logdir, setting_flags, workers, train_flags):
    """Runs `launch/train.py` into `logdir` as `workers` processes (TF_CONFIG for more than one)
    and returns the run's metrics.json; RuntimeError with the end of a failed worker's stderr."""
    command = [sys.executable, "-m", "launch.train", f"--logdir={logdir}"]
    command += list(train_flags) + list(setting_flags)
    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)] if workers > 1 else []
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        if hosts:
            task = {"type": "worker", "index": index}
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": hosts}, "task": task})
        out = None if index == 0 else subprocess.DEVNULL  # the chief's summary only
        processes.append(
            subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE, text=True
            )
        )
    failures = []
    for index, process in enumerate(processes):
        _, stderr = process.communicate()
        if process.returncode:
            failures.append(f"worker {index} exited with {process.returncode}:\n{stderr[-3000:]}")
    if failures:
        raise RuntimeError("\n".join(failures))
    with open(os.path.join(logdir, "metrics.json")) as f:
        return json.load(f)


def markdown(rows):
    """`(name, metrics)` rows as a Markdown table."""
    lines = [
        "| setting | replicas | steps | steps/s | final train bpd | validation bpd | test bpd |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        cells = [m["replicas"], m["step"], _number(m["steps_per_sec"], 2)]
        cells += [_number(m[f"{split}_bpd"], 6) for split in ("train", "validation", "test")]
        lines.append(f"| {name} | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def _number(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"  # None: no step or log interval ran


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    output_dir = os.path.abspath(FLAGS.output_dir)
    logdirs = {name: os.path.join(output_dir, name) for name in FLAGS.settings}
    existing = [path for path in logdirs.values() if os.path.exists(path)]
    if existing:
        raise app.UsageError(f"already there: {', '.join(existing)}; choose another --output_dir")
    train_flags = [
        f"--config={os.path.abspath(FLAGS.config)}",
        f"--config.training.steps={FLAGS.steps}",
        "--config.model.dropout_rate=0.0",
        *FLAGS.override,
    ]
    os.makedirs(output_dir, exist_ok=True)
    rows = []
    for name, logdir in logdirs.items():
        replicas, setting_flags, workers = SETTINGS[name]
        print(f"== {name}: {replicas} replica(s), {workers} process(es), {FLAGS.steps} steps")
        rows.append((name, train(logdir, setting_flags, workers, train_flags)))
    table = (
        f"**{FLAGS.config}, {FLAGS.steps} steps, the preset's global batch, dropout 0"
        f"{''.join(', ' + o for o in FLAGS.override)}**\n\n{markdown(rows)}"
    )
    with open(os.path.join(output_dir, "table.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    print(f"wrote {os.path.join(output_dir, 'table.md')}")


if __name__ == "__main__":
    app.run(main)
