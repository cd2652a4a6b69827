"""Timing and statistics for the benchmarks, written once.

Every figure of the benchmarks is measured the same way: one untimed warm-up run first (tracing,
XLA compilation; its inputs come from `WARM_UP_SEED`, a seed no timed run uses; a sampler's is a
short run, `tfps.evaluation.benchmarking.batch_inputs`), inputs drawn and
brought to the host before the clock starts, each run's result brought to the host before it
stops (so a GPU has finished), and mean with Bessel-corrected standard deviation over the runs,
as [1, Table 1] reports them. Optionally (`best_of` > 1, off by default) each seed's run is
repeated and its fastest time kept, which steadies ratios of loops of a few milliseconds.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import time

import numpy as np

WARM_UP_SEED = 10_000


def mean_std(values):
    """Mean and Bessel-corrected standard deviation (0 for a single value)."""
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def to_host(value):
    """Waits for `value` (on GPU too) by bringing it to the host: a tensor, a
    `tfps.sampling.predictive.SampleResult` (its samples) or a list or tuple of them."""
    if isinstance(value, (list, tuple)) and not hasattr(value, "samples"):
        return [to_host(v) for v in value]
    return getattr(value, "samples", value).numpy()


def timed(run, *args):
    """`(result, seconds)` of one call `run(*args)`, its result brought to the host."""
    start = time.perf_counter()
    result = run(*args)
    to_host(result)
    return result, time.perf_counter() - start


def repeated(run, repeats):
    """`(last result, [seconds per run])` of `repeats` timed calls `run()` after a warm-up."""
    to_host(run())
    results = [timed(run) for _ in range(repeats)]
    return results[-1][0], [seconds for _, seconds in results]


def check_best_of(best_of):
    """`best_of` as an int >= 1, or ValueError naming it."""
    if isinstance(best_of, bool) or not isinstance(best_of, (int, np.integer)) or best_of < 1:
        raise ValueError(f"best_of must be an integer >= 1, got {best_of!r}")
    return int(best_of)


def best_timed(run, inputs, best_of=1):
    """`(result, seconds)` of the fastest of `best_of` calls `run(inputs)`, one after another.

    The result is the last call's (a deterministic run returns the same every time). The minimum
    of a few runs drops the delays other processes add to a loop of milliseconds; `best_of=1` is
    one plain timed call, the paper's protocol.
    """
    runs = [timed(run, inputs) for _ in range(check_best_of(best_of))]
    return runs[-1][0], min(seconds for _, seconds in runs)


def over_seeds(draw, seeds, *runs, warm_up=None, best_of=1):
    """Times each of `runs` on the input `draw(seed)` of every seed, alternating the runs seed by
    seed so that load from other processes hits them alike.

    Args:
      draw: `seed -> input` (noise, latents, a tuple of them); drawn before the clock starts.
      seeds: the timed seeds.
      *runs: callables `input -> result`; each first runs once untimed on `warm_up`.
      warm_up: the warm-up input, shaped like `draw`'s (default `draw(WARM_UP_SEED)`): it must
        reach the code the timed runs reach (`tfps.evaluation.benchmarking.batch_inputs`' short
        input).
      best_of: each run is timed this many times per seed and its fastest time kept
        (`best_timed`); 1 (the default) times it once, as [1, Table 1] does.

    Yields:
      `(seed, [(result, seconds) per run])`.
    """
    best_of = check_best_of(best_of)
    warm_up = draw(WARM_UP_SEED) if warm_up is None else warm_up
    for run in runs:
        to_host(run(warm_up))
    for seed in seeds:
        inputs = draw(seed)
        to_host(inputs)
        yield seed, [best_timed(run, inputs, best_of) for run in runs]
