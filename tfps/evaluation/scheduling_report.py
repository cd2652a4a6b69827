"""The scheduling benchmark: N samples through B slots against plain batches and batch size 1
[1, sec. 4.1] (`tfps.sampling.slots` holds the queue the loop uses).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import functools

import numpy as np

from tfps.distribute import replicated
from tfps.evaluation import timing
from tfps.sampling import noise as noise_lib
from tfps.sampling.slots import check_count


def calls_per_sample_report(
    sampler, num_samples, slots, method="fpi", seed=0, batch_one=None, repeats=1, strategy=None
):
    """ARM calls and wall time per sample: batch size 1, plain batches of B, and B scheduled slots.

    All three sample the same N noise tensors (`gumbel_noise((N, H, W, C, K), seed)`), so they
    return the same samples; `samples_agree` checks it. Every configuration runs once untimed first
    (tracing, XLA compilation), then `repeats` times; wall times are the fastest run.

    Args:
      sampler: a `tfps.sampling.PredictiveSampler`.
      num_samples: N.
      slots: B, the batch size of the plain and the scheduled runs.
      method: sampling method.
      seed: noise seed (int or pair).
      batch_one: how many of the N samples to also run one at a time (default all N). Calls per
        sample at batch 1 is the mean over those; with scheduling it is also known exactly from
        the scheduled run (`scheduled_mean_calls_per_example`), since each sample's trajectory is
        the same.
      repeats: timed runs per configuration (>= 1); more give steadier times on a busy machine.
      strategy: a `tf.distribute` strategy of R replicas (`tfps.replicated.SAMPLING_STRATEGIES`)
        over which the plain batches and the scheduled run are spread: each batch of B in R
        contiguous shares, one plain batch per replica; the N scheduled samples in R shares,
        each replica with ceil(B / R) slots. ARM calls are then the slowest replica's (the calls
        made one after another, `tfps.replicated.replicated_sampler`), so every calls figure
        compares with the one-device one for B slots. Batch size 1 runs on one device.

    Returns:
      dict of plain Python numbers: `num_samples`, `slots`, `method`, `batch1_calls_per_sample`,
      `unscheduled_calls_per_sample` (total calls of ceil(N / B) batches, over N),
      `scheduled_calls_per_sample`, `ideal_calls_per_sample` (batch-1 figure / slots: B, or
      R * ceil(B / R) on R replicas),
      `scheduled_over_ideal`, `scheduled_mean_calls_per_example`, and
      `{batch1,unscheduled,scheduled}_seconds_per_sample`, `samples_agree`, `replicas` (R).
    """
    # Over 60 lines: the three runs (scheduled, plain batches, batch 1) and their comparison are
    # one measurement on the same noise; split, the noise and timings would be passed around.
    num_samples = check_count(num_samples, "num_samples")
    slots = min(check_count(slots, "slots"), num_samples)
    batch_one = (
        num_samples if batch_one is None else min(check_count(batch_one, "batch_one"), num_samples)
    )
    repeats = check_count(repeats, "repeats")
    sampler.check_method(method)
    noise = noise_lib.gumbel_noise(
        (num_samples,) + sampler.event_shape + (sampler.num_categories,), seed
    )

    def timed(run):
        out, seconds = timing.repeated(run, repeats)  # after an untimed run: tracing, XLA
        return out, min(seconds)

    def one_at_a_time():
        return [sampler.sample(noise[k : k + 1], method) for k in range(batch_one)]

    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    slots_per_replica = -(-slots // replicas)
    if replicas == 1:
        batch, schedule = (
            functools.partial(sampler.sample, method=method),
            functools.partial(sampler.sample_scheduled, method=method, slots=slots),
        )
    else:
        batch = replicated.replicated_sampler(sampler, strategy, method, calls="max")
        schedule = replicated.replicated_sampler(
            sampler, strategy, method, slots=slots_per_replica, calls="max"
        )

    def batches():
        return [batch(noise[i : i + slots]) for i in range(0, num_samples, slots)]

    singles, batch1_seconds = timed(one_at_a_time)
    plain, plain_seconds = timed(batches)
    scheduled, scheduled_seconds = timed(lambda: schedule(noise))

    scheduled_samples = scheduled.samples.numpy()
    plain_samples = np.concatenate([r.samples.numpy() for r in plain])
    single_samples = np.concatenate([r.samples.numpy() for r in singles])
    batch1_calls = float(np.mean([int(r.arm_calls) for r in singles]))
    scheduled_calls = int(scheduled.arm_calls) / num_samples
    ideal = batch1_calls / (replicas * slots_per_replica)
    return {
        "num_samples": num_samples,
        "slots": slots,
        "method": method,
        "batch1_calls_per_sample": batch1_calls,
        "unscheduled_calls_per_sample": sum(int(r.arm_calls) for r in plain) / num_samples,
        "scheduled_calls_per_sample": scheduled_calls,
        "ideal_calls_per_sample": ideal,
        "scheduled_over_ideal": scheduled_calls / ideal,
        "scheduled_mean_calls_per_example": float(np.mean(scheduled.arm_calls_per_example)),
        "batch1_seconds_per_sample": batch1_seconds / batch_one,
        "unscheduled_seconds_per_sample": plain_seconds / num_samples,
        "scheduled_seconds_per_sample": scheduled_seconds / num_samples,
        "samples_agree": bool(
            np.array_equal(scheduled_samples, plain_samples)
            and np.array_equal(scheduled_samples[:batch_one], single_samples)
        ),
        "replicas": replicas,
    }


def format_report(report):
    """One human-readable block of the report, for logs and result tables."""
    r = report
    return (
        f"method={r['method']} N={r['num_samples']} B={r['slots']}: ARM calls per sample "
        f"batch-1 {r['batch1_calls_per_sample']:.2f}, unscheduled batch-{r['slots']} "
        f"{r['unscheduled_calls_per_sample']:.3f}, "
        f"scheduled {r['scheduled_calls_per_sample']:.3f} "
        f"(ideal {r['ideal_calls_per_sample']:.3f}, x{r['scheduled_over_ideal']:.3f}); "
        f"seconds per sample batch-1 {r['batch1_seconds_per_sample']:.4f}, unscheduled "
        f"{r['unscheduled_seconds_per_sample']:.4f}, scheduled "
        f"{r['scheduled_seconds_per_sample']:.4f}; samples agree: {r['samples_agree']}"
    )


def markdown_rows(reports):
    """Scheduling reports as a Markdown table: ARM calls and seconds per sample, three ways."""
    if not reports:
        return ""
    lines = [
        "| Scheduling (N samples, B slots) | calls/sample batch 1 | unscheduled batch B | "
        "scheduled | scheduled / (batch-1 / B) | s/sample batch 1 | unscheduled | scheduled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        replicas = r.get("replicas", 1)
        over = "" if replicas == 1 else f" over {replicas} replicas"
        lines.append(
            f"| {r['method']}, N={r['num_samples']}, B={r['slots']}{over} | "
            f"{r['batch1_calls_per_sample']:.2f} | {r['unscheduled_calls_per_sample']:.3f} | "
            f"{r['scheduled_calls_per_sample']:.3f} | {r['scheduled_over_ideal']:.2f}x | "
            f"{r['batch1_seconds_per_sample']:.4f} | {r['unscheduled_seconds_per_sample']:.4f} | "
            f"{r['scheduled_seconds_per_sample']:.4f} |"
        )
    return "\n".join(lines)
