"""Pictures and TensorBoard summaries that show where and why forecasts fail (seed 000, Figures 3-6).

Images are int `[B, H, W, C]` with values in [0, K); C = 1 is shown in grey, C = 3 as RGB. Every
picture is a uint8 `[height, width, 3]` array, written both as a PNG file and as a TensorBoard image,
so people without TensorBoard see the same thing.

What a sampling run reports (`inspect`), per method:

  images
    `samples`            the sample grid.
    `forecast_mistakes`  one tile per sample, aligned with the sample grid: the sample in grey
                         (mean over channels) with every position whose forecast was found wrong in
                         red, blended by the fraction of its C channels that were wrong: 1/3, 2/3 or
                         3/3 red for C = 3 (Figures 3-4; Figure 5 averages over latent channels the
                         same way). Methods that make no forecasts (`ancestral`) have none.
    `convergence`        the mean over channels and examples of the iteration at which each
                         position was determined (Figure 6), on a log colour scale (viridis), next
                         to the ancestral baseline's map, with a colour bar.
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

"Determined at" (Figure 6): for a forecasting method the ARM call from which the variable's output
never changed again (`SampleResult.converged_at`; fixed-point iteration may settle a value before it
joins the valid prefix). Ancestral sampling has no iterate to settle: a value exists once it is
sampled, so its map uses `accepted_at`, which without evidence is the variable's position in the
ordering plus one (`ancestral_determined_at`), d at most.
"""
import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

ANCESTRAL = "ancestral"  # tfps.sampling.ANCESTRAL; not imported, so pictures need no sampler.

SAMPLES, MISTAKES, CONVERGENCE = "samples", "forecast_mistakes", "convergence"
ARM_CALLS_PERCENT = "arm_calls_percent"
FORECAST_ACCURACY = "forecast_accuracy"
SECONDS_PER_SAMPLE = "seconds_per_sample"
ARM_CALLS_HISTOGRAM = "arm_calls_per_example"

SAMPLE_RUN, BENCHMARK_RUN = "sample", "benchmark"

# Viridis (matplotlib's perceptually uniform map, CC0) at entries 0, 32, ..., 224, 255 of its 256.
_VIRIDIS_AT = np.array([0, 32, 64, 96, 128, 160, 192, 224, 255]) / 255.0
_VIRIDIS = np.array([
    [0.267004, 0.004874, 0.329415], [0.282623, 0.140926, 0.457517],
    [0.229739, 0.322361, 0.545706], [0.172719, 0.448791, 0.557885],
    [0.127568, 0.566949, 0.550556], [0.157851, 0.683765, 0.501686],
    [0.369214, 0.788888, 0.382914], [0.678489, 0.863742, 0.189503],
    [0.993248, 0.906157, 0.143936]])

RED = np.array([255.0, 0.0, 0.0])


# ------------------------------------------------------------------------------- basic pictures
def to_rgb(images, num_categories):
    """int `[B, H, W, C]` in [0, K) -> uint8 `[B, H, W, 3]` (grey for C = 1, first 3 channels else)."""
    images = np.asarray(images, np.float64)
    scaled = np.round(255.0 * images / max(num_categories - 1, 1)).astype(np.uint8)
    if scaled.shape[-1] == 1:
        return np.repeat(scaled, 3, axis=-1)
    if scaled.shape[-1] == 3:
        return scaled
    raise ValueError(f"can only draw 1- or 3-channel images, got {scaled.shape[-1]} channels")


def grid(images, columns=None, pad=1, scale=1, pad_value=255):
    """Tiles uint8 `[B, H, W, 3]` into one `[rows*(H+pad)+pad, cols*(W+pad)+pad, 3]` picture.

    `scale` repeats every pixel (nearest neighbour) so small images stay visible.
    """
    images = np.asarray(images, np.uint8)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    count, height, width, depth = images.shape
    columns = columns or int(math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    out = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, depth), pad_value,
                  np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        out[top:top + height, left:left + width] = image
    return out


def to_picture(images, num_categories):
    """Like `to_rgb`, but any other channel count (e.g. 4 latent channels) in grey: the channel mean."""
    images = np.asarray(images)
    if images.shape[-1] in (1, 3):
        return to_rgb(images, num_categories)
    return to_rgb(images.mean(axis=-1, keepdims=True), num_categories)


def write_png(path, picture):
    """Writes a uint8 `[H, W, 3]` picture as PNG."""
    tf.io.write_file(path, tf.io.encode_png(tf.constant(picture, tf.uint8)))


def auto_scale(height, target=96):
    """An integer upscaling factor that makes an image about `target` pixels high."""
    return max(1, target // max(height, 1))


# ------------------------------------------------------------------------ forecasting mistakes
def mistake_map(samples, mistakes, num_categories):
    """Figures 3-4: samples in grey with wrongly forecast positions in red.

    Args:
      samples: int `[B, H, W, C]` in [0, K).
      mistakes: bool `[B, H, W, C]`, `SampleResult.forecast_mistakes`.
      num_categories: K.

    Returns uint8 `[B, H, W, 3]`: with g the channel mean of the sample scaled to [0, 255] and r the
    fraction of the C channels at that position that were wrong, the pixel is
    (1 - r) * (g, g, g) + r * (255, 0, 0). So R == G == B exactly where no forecast was wrong, and
    R - G = 255 r (up to rounding) elsewhere: k/3 red for k wrong channels of 3.
    """
    samples = np.asarray(samples, np.float64)
    mistakes = np.asarray(mistakes, bool)
    if samples.ndim != 4 or samples.shape != mistakes.shape:
        raise ValueError(f"samples and mistakes must both be [B, H, W, C], got {samples.shape} and "
                         f"{mistakes.shape}")
    grey = 255.0 * samples.mean(axis=-1) / max(num_categories - 1, 1)
    red = mistakes.mean(axis=-1)
    rgb = ((1.0 - red) * grey)[..., None] + red[..., None] * RED
    return np.round(rgb).astype(np.uint8)


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


def log_position(values, vmin, vmax):
    """Where `values` fall on a log scale from `vmin` (0) to `vmax` (1), clipped to [0, 1]."""
    values = np.clip(np.asarray(values, np.float64), vmin, vmax)
    if vmax <= vmin:
        return np.zeros_like(values)
    return (np.log(values) - math.log(vmin)) / (math.log(vmax) - math.log(vmin))


def colormap(positions):
    """Viridis: positions in [0, 1] -> uint8 RGB `[..., 3]`, dark blue to yellow (luminance rises)."""
    positions = np.clip(np.asarray(positions, np.float64), 0.0, 1.0)
    rgb = np.stack([np.interp(positions, _VIRIDIS_AT, _VIRIDIS[:, c]) for c in range(3)], axis=-1)
    return np.round(255.0 * rgb).astype(np.uint8)


def colorize_log(values, vmin, vmax):
    """uint8 `[..., 3]`: `values` coloured on a log scale from `vmin` to `vmax`."""
    return colormap(log_position(values, vmin, vmax))


def _font():
    from PIL import ImageFont  # pillow is a core dependency; imported where text is drawn
    return ImageFont.load_default()


def _text_size(draw, text, font):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom


def _canvas(height, width):
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (width, height), (255, 255, 255))
    return image, ImageDraw.Draw(image)


def _log_ticks(vmin, vmax):
    """vmin, the powers of 10 (and 2 x, 5 x them when few) strictly between, and vmax."""
    inner = []
    for exponent in range(0, int(math.log10(max(vmax, 1))) + 1):
        for mantissa in (1, 2, 5):
            inner.append(mantissa * 10 ** exponent)
    inner = [v for v in inner if vmin * 1.15 < v < vmax / 1.15]
    if len(inner) > 4:
        inner = [v for v in inner if str(v)[0] == "1"]
    return [vmin] + inner + [vmax]


def _format_calls(value):
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def colorbar(vmin, vmax, height, bar_width=12):
    """uint8 `[height, width, 3]`: a vertical log colour bar (vmin at the bottom) with tick labels."""
    font = _font()
    ticks = _log_ticks(vmin, vmax)
    _, measure = _canvas(1, 1)
    label_width = max(_text_size(measure, _format_calls(t), font)[0] for t in ticks)
    text_height = _text_size(measure, "0", font)[1]
    margin = text_height // 2 + 1   # room for the half labels at either end
    bar_height = max(height - 2 * margin, 2)
    image, draw = _canvas(height, bar_width + 4 + label_width + 2)
    bar = colormap(np.linspace(1.0, 0.0, bar_height))[:, None, :].repeat(bar_width, axis=1)
    image.paste(_pil(bar), (0, margin))
    for tick in ticks:
        y = margin + int(round((1.0 - log_position(tick, vmin, vmax)) * (bar_height - 1)))
        draw.line([(bar_width, y), (bar_width + 2, y)], fill=(0, 0, 0))
        draw.text((bar_width + 4, y - text_height // 2 - 1), _format_calls(tick), fill=(0, 0, 0),
                  font=font)
    return np.asarray(image)


def _pil(picture):
    from PIL import Image
    return Image.fromarray(np.ascontiguousarray(picture, np.uint8))


def _titled(picture, lines):
    """`picture` with text `lines` centred above it, on white."""
    font = _font()
    _, measure = _canvas(1, 1)
    sizes = [_text_size(measure, line, font) for line in lines]
    line_height = max(h for _, h in sizes) + 2
    width = max([picture.shape[1]] + [w + 4 for w, _ in sizes])
    top = line_height * len(lines) + 2
    image, draw = _canvas(top + picture.shape[0], width)
    for i, (line, (w, _)) in enumerate(zip(lines, sizes)):
        draw.text(((width - w) // 2, 1 + i * line_height), line, fill=(0, 0, 0), font=font)
    image.paste(_pil(picture), ((width - picture.shape[1]) // 2, top))
    return np.asarray(image)


def _side_by_side(pictures, gap=8):
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    left = 0
    for picture in pictures:
        top = height - picture.shape[0]   # bottom-aligned: the maps share a baseline
        out[top:, left:left + picture.shape[1]] = picture
        left += picture.shape[1] + gap
    return out


def convergence_figure(maps, scale=None):
    """Figure 6: named `[H, W]` mean-iteration maps side by side on one log colour scale.

    Args:
      maps: `{title: float [H, W]}`, e.g. `{"fpi": ..., "ancestral": ...}`, in display order.
      scale: pixel upscaling (default: about 128 pixels high).

    Returns `(picture uint8 [h, w, 3], (vmin, vmax))`: the scale runs from iteration 1 (the first
    ARM call) to the largest value shown; each panel is titled with its name and value range.
    """
    maps = {name: np.asarray(m, np.float64) for name, m in maps.items()}
    vmin = 1.0
    vmax = max(vmin * 2, max(float(m.max()) for m in maps.values()))
    height = next(iter(maps.values())).shape[0]
    scale = scale or auto_scale(height, 128)
    panels = []
    for name, values in maps.items():
        coloured = colorize_log(values, vmin, vmax).repeat(scale, 0).repeat(scale, 1)
        panels.append(_titled(coloured, [name, f"calls {_format_calls(values.min())} to "
                                               f"{_format_calls(values.max())}"]))
    panel_height = panels[0].shape[0]
    image_height = next(iter(maps.values())).shape[0] * scale
    bar = colorbar(vmin, vmax, image_height)
    bar = np.concatenate([np.full((panel_height - image_height, bar.shape[1], 3), 255, np.uint8),
                          bar], axis=0)
    return _side_by_side(panels + [bar]), (vmin, vmax)


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
        fields[field] = (np.sum(values) if values[0].ndim == 0 else np.concatenate(values, axis=0))
    return type(results[0])(**fields)


def inspect(result, method, num_categories, seconds_per_sample=None, seconds_description=None,
            baseline=None, max_samples=32, scale=None):
    """Scalars, pictures and a histogram that show a sampling run's forecasts (module doc).

    Args:
      result: a `tfps.sampling.SampleResult` (tensors or numpy) of N samples.
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
    samples = np.asarray(result.samples)
    mistakes = np.asarray(result.forecast_mistakes, bool)
    checked = np.asarray(result.forecasts_checked)
    calls = np.asarray(result.arm_calls_per_example)
    num_samples, height = samples.shape[0], samples.shape[1]
    d = int(np.prod(samples.shape[1:]))
    scale = scale or auto_scale(height)
    shown = slice(0, min(num_samples, max_samples))
    shown_text = f"the first {shown.stop} of {num_samples} samples" if shown.stop < num_samples \
        else f"{num_samples} samples"

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
            f"{int(checked.sum())} forecasts checked, over {num_samples} samples.")
    if seconds_per_sample is not None:
        scalars[SECONDS_PER_SAMPLE] = float(seconds_per_sample)
        descriptions[SECONDS_PER_SAMPLE] = seconds_description or "Seconds per sample."

    pictures = {SAMPLES: grid(to_picture(samples[shown], num_categories), scale=scale)}
    if accuracy is not None:
        pictures[MISTAKES] = grid(mistake_map(samples[shown], mistakes[shown], num_categories),
                                  scale=scale)
        descriptions[MISTAKES] = (
            f"{method}: where the forecast was wrong (red) on {shown_text} in grey, tiles as in "
            f"`samples`; the share of red is the share of the {samples.shape[-1]} channel(s) "
            f"forecast wrongly (seed 000, Figures 3-4).")

    maps = {method: convergence_average(determined_at(result, method))}
    if baseline is not None and method != ANCESTRAL:
        maps[ANCESTRAL] = convergence_average(baseline)
    pictures[CONVERGENCE], (vmin, vmax) = convergence_figure(maps)
    ranges = "; ".join(f"{name} {m.min():.1f} to {m.max():.1f}" for name, m in maps.items())
    descriptions[CONVERGENCE] = (
        f"The ARM call at which each position was determined (converged: its output never changed "
        f"again; for ancestral, sampled), mean over channels and {num_samples} samples "
        f"(seed 000, Figure 6): {ranges}. Log colour scale (viridis) from {vmin:g} to {vmax:.1f}.")
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
            tf.summary.image(tag, np.asarray(picture, np.uint8)[None], max_outputs=1,
                             description=described.get(tag))
        for tag, values in inspection.histograms.items():
            tf.summary.histogram(tag, np.asarray(values, np.float64),
                                 description=described.get(tag))
    writer.flush()
    writer.close()


def write_pngs(prefix, method, inspection):
    """Writes every picture as `<prefix><tag>_<method>.png`; returns the paths."""
    paths = []
    for tag, picture in inspection.pictures.items():
        path = f"{prefix}{tag}_{method}.png"
        write_png(path, picture)
        paths.append(path)
    return paths
