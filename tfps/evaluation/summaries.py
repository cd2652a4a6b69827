"""TensorBoard summaries that show where and why forecasts fail [1, Figures 3-6].

`inspect` turns a sampling run's `tfps.sampling.predictive.SampleResult` into an `Inspection`:
scalars, pictures (drawn by `tfps.evaluation.pictures`) and a histogram, each with a description.
`write_tensorboard` writes it as TensorBoard summaries and `write_pngs` as PNG files, so people
without TensorBoard see the same thing. What a sampling run reports, per method:

  images
    `samples`            the sample grid.
    `forecast_mistakes`  one tile per sample, aligned with the sample grid: where the forecast was
                         found wrong (`tfps.evaluation.pictures.mistake_map`, [1, Figures 3-5]).
                         Methods that make no forecasts (`ancestral`) have none.
    `convergence`        the mean over channels and examples of the iteration at which each
                         position was determined [1, Figure 6], on a log colour scale, next to the
                         ancestral baseline's map (`tfps.evaluation.pictures.convergence_figure`).
  scalars
    `arm_calls_percent`  ARM calls each example needed, mean over examples, as a % of d.
    `forecast_accuracy`  correct forecasts / forecasts made (1 - mistakes / checked), over the run.
    `seconds_per_sample` wall-clock seconds per sample (what the launcher measured; see its
                         description).
  histogram
    `arm_calls_per_example`.

Runs: a launcher given `--logdir=<training run dir>` writes under `<logdir>/sample_<method>`
(`launch/sample.py`) or `<logdir>/benchmark_<method>` (`launch/benchmark.py`), next to the training
runs `train`, `validation`, `test`, at the checkpoint's training step, so one TensorBoard shows
training and sampling together and compares methods on one chart per tag.

"Determined at" [1, Figure 6]: for a forecasting method the ARM call from which the variable's
output never changed again (`SampleResult.converged_at`; fixed-point iteration may settle a value
before it joins the valid prefix). Ancestral sampling has no iterate to settle: a value exists once
it is sampled, so its map uses `accepted_at`, which without evidence is the variable's position in
the ordering plus one (`ancestral_determined_at`), d at most.

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfps.evaluation import pictures as pictures_lib
from tfps.sampling import events

ANCESTRAL = "ancestral"  # tfps.sampling.predictive.ANCESTRAL (summaries need no sampler)

SAMPLES, MISTAKES, CONVERGENCE = "samples", "forecast_mistakes", "convergence"
ARM_CALLS_PERCENT = "arm_calls_percent"
FORECAST_ACCURACY = "forecast_accuracy"
SECONDS_PER_SAMPLE = "seconds_per_sample"
ARM_CALLS_HISTOGRAM = "arm_calls_per_example"

SAMPLE_RUN, BENCHMARK_RUN = "sample", "benchmark"


# ------------------------------------------------------------------------ forecasting mistakes
def forecast_accuracy(forecast_mistakes, forecasts_checked):
    """Correct forecasts / forecasts made = 1 - sum(mistakes) / sum(checked); None if none made."""
    checked = int(np.sum(forecasts_checked))
    if checked == 0:
        return None
    return 1.0 - float(np.sum(forecast_mistakes)) / checked


# --------------------------------------------------------------------------------- convergence
def determined_at(result, method):
    """int `[B, H, W, C]`: the ARM call at which each variable was determined (Figure 6).

    `converged_at` for forecasting methods; `accepted_at` for `ancestral` (see the module doc).
    """
    return np.asarray(result.accepted_at if method == ANCESTRAL else result.converged_at)


def ancestral_determined_at(image_shape):
    """int `[H, W, C]`: ancestral sampling without evidence determines variable i at call i + 1
    (raster-then-channel order), the baseline of Figure 6 without running d ARM calls."""
    return np.arange(1, int(np.prod(image_shape)) + 1, dtype=np.int32).reshape(image_shape)


def convergence_average(calls):
    """float `[H, W]`: `[B, H, W, C]` (or `[H, W, C]`) calls averaged over examples and channels."""
    calls = np.asarray(calls, np.float64)
    if calls.ndim == 3:
        calls = calls[None]
    if calls.ndim != 4:
        raise ValueError(f"expected calls [B, H, W, C] or [H, W, C], got shape {calls.shape}")
    return calls.mean(axis=(0, 3))


PER_VARIABLE = ("samples", "converged_at", "accepted_at", "forecast_mistakes")


def as_images(result):
    """`result` (numpy fields) with its per-variable fields `[N, *event_shape]` in the canonical
    image layout `[N, H, W, C]` (`tfps.sampling.events`): a sequence becomes a one-row image, a
    strip."""
    samples = np.asarray(result.samples)
    shape = samples.shape[:1] + events.canonical_shape(samples.shape[1:])
    fields = {f: np.asarray(getattr(result, f)).reshape(shape) for f in PER_VARIABLE}
    return result._replace(**fields)


# ---------------------------------------------------------------------------- one sampling run
class Inspection(NamedTuple):
    """What `inspect` found: `{tag: value}` dicts, written by `write_tensorboard` / `write_pngs`.

    scalars: `{tag: float}`; pictures: `{tag: uint8 [h, w, 3]}`; histograms: `{tag: 1-D array}`;
    descriptions: `{tag: markdown}` shown by TensorBoard next to the tag.
    """

    scalars: dict
    pictures: dict
    histograms: dict
    descriptions: dict


def concat_results(results):
    """One result from several (e.g. one per seed): per-example fields concatenated along the batch,
    `arm_calls` summed. Fields come back as numpy arrays."""
    results = list(results)
    fields = {}
    for field in results[0]._fields:
        values = [np.asarray(getattr(r, field)) for r in results]
        fields[field] = np.sum(values) if values[0].ndim == 0 else np.concatenate(values, axis=0)
    return type(results[0])(**fields)


def inspect(
    result,
    method,
    num_categories,
    seconds_per_sample=None,
    seconds_description=None,
    baseline=None,
    max_samples=32,
    scale=None,
):
    """Scalars, pictures and a histogram that show a sampling run's forecasts (module doc).

    Args:
      result: a `tfps.sampling.predictive.SampleResult` (tensors or numpy) of N samples.
      method: the method that made it (ancestral makes no forecasts: no accuracy, no mistake map).
      num_categories: K.
      seconds_per_sample: optional time to report, with `seconds_description` saying what it counts.
      baseline: optional int `[B', H, W, C]` or `[H, W, C]` calls at which the ancestral baseline
        determined each variable (`ancestral_determined_at(image_shape)` without evidence); drawn
        next to this run's convergence map. Ignored for `ancestral` itself.
      max_samples: at most this many samples in the sample and mistake grids (the maps and
        scalars use all N).
      scale: pixel upscaling of the grids (default about 96 pixels per image).
    """
    # Over 60 lines: one entry per reported quantity, each with its description, in the order
    # TensorBoard and the PNG files show them.
    result = as_images(result)
    samples = np.asarray(result.samples)
    mistakes = np.asarray(result.forecast_mistakes, bool)
    checked = np.asarray(result.forecasts_checked)
    calls = np.asarray(result.arm_calls_per_example)
    num_samples, height, width = samples.shape[:3]
    d = int(np.prod(samples.shape[1:]))
    scale = scale or min(pictures_lib.auto_scale(height), max(1, 1024 // width))
    columns = 1 if height == 1 else None  # sequences: one strip per row
    shown = slice(0, min(num_samples, max_samples))
    shown_text = (
        f"the first {shown.stop} of {num_samples} samples"
        if shown.stop < num_samples
        else f"{num_samples} samples"
    )

    scalars = {ARM_CALLS_PERCENT: 100.0 * float(calls.mean()) / d}
    descriptions = {
        ARM_CALLS_PERCENT: f"ARM calls each sample needed, mean over {num_samples} samples, as a "
        f"% of d = {d} (ancestral: 100%).",
        SAMPLES: f"{method}: {shown_text}.",
        ARM_CALLS_HISTOGRAM: f"ARM calls per sample ({method}, {num_samples} samples; d = {d}).",
    }
    accuracy = forecast_accuracy(mistakes, checked)
    if accuracy is not None:
        scalars[FORECAST_ACCURACY] = accuracy
        descriptions[FORECAST_ACCURACY] = (
            f"Correct forecasts / forecasts made by {method}: 1 - {int(mistakes.sum())} mistakes / "
            f"{int(checked.sum())} forecasts checked, over {num_samples} samples."
        )
    if seconds_per_sample is not None:
        scalars[SECONDS_PER_SAMPLE] = float(seconds_per_sample)
        descriptions[SECONDS_PER_SAMPLE] = seconds_description or "Seconds per sample."

    pictures = {
        SAMPLES: pictures_lib.grid(
            pictures_lib.to_picture(samples[shown], num_categories), columns, scale=scale
        )
    }
    if accuracy is not None:
        pictures[MISTAKES] = pictures_lib.grid(
            pictures_lib.mistake_map(samples[shown], mistakes[shown], num_categories),
            columns,
            scale=scale,
        )
        descriptions[MISTAKES] = (
            f"{method}: where the forecast was wrong (red) on {shown_text} in grey, tiles as in "
            f"`samples`; the share of red is the share of the {samples.shape[-1]} channel(s) "
            f"forecast wrongly (Wiggers & Hoogeboom 2020, Figures 3-4)."
        )

    maps = {method: convergence_average(determined_at(result, method))}
    if baseline is not None and method != ANCESTRAL:  # in the event's or the image layout
        maps[ANCESTRAL] = convergence_average(np.reshape(baseline, (-1,) + samples.shape[1:]))
    pictures[CONVERGENCE], (vmin, vmax) = pictures_lib.convergence_figure(maps)
    ranges = "; ".join(f"{name} {m.min():.1f} to {m.max():.1f}" for name, m in maps.items())
    descriptions[CONVERGENCE] = (
        f"The ARM call at which each position was determined (converged: its output never changed "
        f"again; for ancestral, sampled), mean over channels and {num_samples} samples "
        f"(Wiggers & Hoogeboom 2020, Figure 6): {ranges}. Log colour scale (viridis) from "
        f"{vmin:g} to {vmax:.1f}."
    )
    return Inspection(scalars, pictures, {ARM_CALLS_HISTOGRAM: calls}, descriptions)


# ---------------------------------------------------------------------------------- writing
def run_dir(logdir, kind, method):
    """`<logdir>/<kind>_<method>`: the TensorBoard run of one method (kind: sample, benchmark)."""
    return f"{logdir.rstrip('/')}/{kind}_{method}"


def write_tensorboard(run_directory, step, inspection, extra_scalars=None, descriptions=None):
    """Writes `inspection` (and `{tag: value}` `extra_scalars`) as TensorBoard summaries at `step`.

    Needs the `tensorboard` package (TF's summary ops come from it).
    """
    described = {**inspection.descriptions, **(descriptions or {})}
    writer = tf.summary.create_file_writer(run_directory)
    with writer.as_default(step=int(step)):
        for tag, value in {**inspection.scalars, **(extra_scalars or {})}.items():
            tf.summary.scalar(tag, float(value), description=described.get(tag))
        for tag, picture in inspection.pictures.items():
            tf.summary.image(
                tag,
                np.asarray(picture, np.uint8)[None],
                max_outputs=1,
                description=described.get(tag),
            )
        for tag, values in inspection.histograms.items():
            tf.summary.histogram(
                tag, np.asarray(values, np.float64), description=described.get(tag)
            )
    writer.flush()
    writer.close()


def write_pngs(prefix, method, inspection):
    """Writes every picture as `<prefix><tag>_<method>.png`; returns the paths."""
    paths = []
    for tag, picture in inspection.pictures.items():
        path = f"{prefix}{tag}_{method}.png"
        pictures_lib.write_png(path, picture)
        paths.append(path)
    return paths
