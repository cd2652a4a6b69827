"""Whether an export's sampling signatures make incremental ARM calls: forced, or timed.

Incremental calls (`tfps.sampling.incremental`) do not change a sample, only the work per call (and,
with windows smaller than the image, possibly a few more calls), so an export may use them or not
under the same serving contract. Whether they pay depends on the model and the machine: a window
call computes a share of the rows, at the price of per-op overhead (the gathers and scatters of the
caches, and the network's ops, which do not shrink with the rows). `mode="auto"` therefore
measures, on the model to export, the default method `fpi` [1, sec. 2.3] with plain calls and
with incremental calls in each candidate window (`candidate_windows`: the smallest, 2**(S - 1)
rows, and the default, `tfps.sampling.incremental.DEFAULT_WINDOW_ROWS`; which is faster depends on
the machine and on XLA, docs/incremental.md), and keeps the fastest.

What is timed (`time_plain_and_incremental`): the library's `fpi` sampling loop
(`PredictiveSampler.loop_function`, with the export's `jit_compile`) at batch 1, no evidence, on
the Gumbel noise of seeds 0 .. n-1 (`DEFAULT_SEEDS`: 3); both loops first run once untimed on
another seed (tracing and compilation excluded), then run alternately seed by seed
(`tfps.evaluation.timing.over_seeds`); the figure of each is its mean seconds per sample. So the
cost is v traces and v (n + 1) samples at batch 1, for v = 1 + the candidate windows (2 or 3).

The choice is recorded in the export's metadata as `"incremental"`:
`{"used": bool, "mode": "auto" | "true" | "false", "reason": str, "rows": the window of the
incremental calls (None: plain), "seconds": {"plain": s, "incremental": s of the fastest window} or
None, "windows": {"<rows>": s per candidate} or None, "timed": {"method", "batch_size", "seeds",
"jit_compile"} or None}`.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

from tfps.evaluation import benchmarking, timing
from tfps.sampling import incremental, predictive

MODES = ("auto", "true", "false")
DEFAULT_SEEDS = range(3)
TIMED_METHOD = "fpi"
TIMED_BATCH_SIZE = 1


def parse_mode(mode):
    """`"auto"`, `"true"` or `"false"` for `mode` in {"auto", True, False, "true", "false"}."""
    if isinstance(mode, bool):
        return "true" if mode else "false"
    if isinstance(mode, str) and mode.lower() in MODES:
        return mode.lower()
    raise ValueError(f"incremental must be 'auto', True or False, got {mode!r}")


def check_mode(model, mode):
    """The parsed `mode`; ValueError for "true" on a model without row bands (only PixelCNN
    models take them), so an export can fail before it writes anything."""
    mode = parse_mode(mode)
    if mode == "true" and not incremental.supports_incremental(model):
        raise ValueError(
            f"incremental=true needs row bands, which only PixelCNN models (arch 'pixelcnn') "
            f"take; {type(model).__name__} does not (use incremental=auto or false)"
        )
    return mode


def candidate_windows(model):
    """The windows (rows) that `auto` times: the smallest and the default, each once."""
    return sorted({incremental.window_rows(model, 1), incremental.window_rows(model, True)})


def time_plain_and_incremental(model, jit_compile=False, seeds=DEFAULT_SEEDS):
    """Mean seconds per `fpi` sample at batch 1, `{"plain": s, rows: s, ...}`, of `model`'s
    library sampler with plain calls and with incremental calls in each of `candidate_windows`
    (the module doc says what is timed)."""
    samplers = {
        name: predictive.sampler_for_model(model, jit_compile=jit_compile, incremental=used)
        for name, used in (("plain", False), *((w, w) for w in candidate_windows(model)))
    }
    draw, warm_up = benchmarking.batch_inputs(samplers["plain"], TIMED_BATCH_SIZE)
    seconds = {name: [] for name in samplers}
    runs = [benchmarking.on_inputs(s.loop_function(TIMED_METHOD)) for s in samplers.values()]
    for _, timed in timing.over_seeds(draw, list(seeds), *runs, warm_up=warm_up):
        for name, (_, elapsed) in zip(samplers, timed):
            seconds[name].append(elapsed)
    return {name: timing.mean_std(values)[0] for name, values in seconds.items()}


def choose(model, mode=False, jit_compile=False, seeds=DEFAULT_SEEDS, sampler=None):
    """The metadata record of whether to export `model` with incremental calls (module doc).

    Args:
      model: the ARM to export (`tfps.models.arms`).
      mode: False / "false" (the default: plain calls), True / "true" (ValueError for an ARM
        without row bands), "auto" (time both where the model takes row bands, keep the faster;
        never for other ARMs).
      jit_compile: that of the export's sampling loops (timed with it).
      seeds: the timed seeds (a few: each is one sample per variant at batch 1).
      sampler: a sampler of your own to export instead of the default one: its calls are kept
        and recorded (`mode` must not be True).
    """
    mode = check_mode(model, mode)
    record = {
        "used": mode == "true",
        "mode": mode,
        "rows": None,
        "seconds": None,
        "windows": None,
        "timed": None,
    }
    if sampler is not None:
        if mode == "true":
            raise ValueError("incremental is for the default sampler; give yours incremental_arm")
        record.update(used=bool(getattr(sampler, "incremental", False)), reason="given sampler")
    elif mode != "auto":
        record["reason"] = "forced"
        if record["used"]:
            record["rows"] = incremental.window_rows(model, True)
    elif not incremental.supports_incremental(model):
        record["reason"] = "no row bands (not a PixelCNN)"
    else:
        timed = time_plain_and_incremental(model, jit_compile, seeds)
        plain = timed.pop("plain")
        rows = min(timed, key=timed.get)
        used = timed[rows] < plain
        record.update(
            used=used,
            reason="faster" if used else "not faster",
            rows=rows if used else None,
            seconds={"plain": plain, "incremental": timed[rows]},
            windows={str(w): s for w, s in timed.items()},
            timed={
                "method": TIMED_METHOD,
                "batch_size": TIMED_BATCH_SIZE,
                "seeds": len(list(seeds)),
                "jit_compile": bool(jit_compile),
            },
        )
    return record


def describe(record):
    """One line on the choice of an export's metadata (`record` None: an export from before the
    choice existed, which makes plain calls)."""
    if not record:
        return "plain ARM calls (not recorded)"
    text = f"{'incremental' if record.get('used') else 'plain'} ARM calls"
    if record.get("used") and record.get("rows"):
        text += f" in windows of {record['rows']} rows"
    text += f" (incremental={record.get('mode')}: {record.get('reason')}"
    seconds = record.get("seconds")
    if seconds:
        timed = record.get("timed") or {}
        text += (
            f"; {timed.get('method', TIMED_METHOD)} at batch {timed.get('batch_size', 1)}: "
            f"plain {seconds['plain']:.4f}s, incremental {seconds['incremental']:.4f}s per sample"
        )
    return text + ")"


def describe_export(metadata):
    """The line `launch.sample` and `launch.benchmark` print about an export's metadata."""
    return f"the export makes {describe(metadata.get('incremental'))}"
