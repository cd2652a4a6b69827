"""Pictures of samples, forecasting mistakes and convergence [1, Figures 3-6], as numpy arrays.

Images are int `[B, H, W, C]` with values in [0, K); C = 1 is drawn in grey, C = 3 as RGB, other
channel counts (e.g. latent channels) in grey from the channel mean (`to_picture`). Every picture is
a uint8 `[height, width, 3]` array; `write_png` writes one as a PNG file, and
`tfps.evaluation.summaries` writes them as TensorBoard images too.

  `grid`                tiles pictures, optionally upscaled (`auto_scale`).
  `mistake_map`         [1, Figures 3-4]: the sample in grey with every position whose forecast
                        was found wrong in red, blended by the fraction of its C channels that were
                        wrong ([1, Figure 5] averages over latent channels the same way).
  `convergence_figure`  [1, Figure 6]: mean-iteration maps on one log colour scale (viridis),
                        side by side, with a colour bar (`colorbar`).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive
     Models. In ICML, 2020.
"""

import math

import numpy as np
import tensorflow as tf

# Viridis (matplotlib's perceptually uniform map, CC0) at entries 0, 32, ..., 224, 255 of its 256.
_VIRIDIS_AT = np.array([0, 32, 64, 96, 128, 160, 192, 224, 255]) / 255.0
_VIRIDIS = np.array(
    [
        [0.267004, 0.004874, 0.329415],
        [0.282623, 0.140926, 0.457517],
        [0.229739, 0.322361, 0.545706],
        [0.172719, 0.448791, 0.557885],
        [0.127568, 0.566949, 0.550556],
        [0.157851, 0.683765, 0.501686],
        [0.369214, 0.788888, 0.382914],
        [0.678489, 0.863742, 0.189503],
        [0.993248, 0.906157, 0.143936],
    ]
)

RED = np.array([255.0, 0.0, 0.0])


# ------------------------------------------------------------------------------- basic pictures
def to_rgb(images, num_categories):
    """int `[B, H, W, C]` in [0, K) -> uint8 `[B, H, W, 3]` (grey for C = 1, RGB for C = 3)."""
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
    out = np.full(
        (rows * (height + pad) + pad, columns * (width + pad) + pad, depth), pad_value, np.uint8
    )
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        out[top : top + height, left : left + width] = image
    return out


def to_picture(images, num_categories):
    """Like `to_rgb`, but any other channel count (e.g. 4 latent channels) in grey: the channel
    mean."""
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


def write_rows(path, rows, num_categories, target=48):
    """Writes the PNG `path`: the int images `[N, H, W, C]` of each of `rows` (N the same in all)
    as one row of the grid, upscaled to about `target` pixels high."""
    picture = to_picture(np.concatenate(rows), num_categories)
    scale = auto_scale(picture.shape[1], target)
    write_png(path, grid(picture, columns=len(rows[0]), scale=scale))


# ------------------------------------------------------------------------ forecasting mistakes
def mistake_map(samples, mistakes, num_categories):
    """[1, Figures 3-4]: samples in grey with wrongly forecast positions in red.

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
        raise ValueError(
            f"samples and mistakes must both be [B, H, W, C], got {samples.shape} and "
            f"{mistakes.shape}"
        )
    grey = 255.0 * samples.mean(axis=-1) / max(num_categories - 1, 1)
    red = mistakes.mean(axis=-1)
    rgb = ((1.0 - red) * grey)[..., None] + red[..., None] * RED
    return np.round(rgb).astype(np.uint8)


# --------------------------------------------------------------------------------- convergence
def log_position(values, vmin, vmax):
    """Where `values` fall on a log scale from `vmin` (0) to `vmax` (1), clipped to [0, 1]."""
    values = np.clip(np.asarray(values, np.float64), vmin, vmax)
    if vmax <= vmin:
        return np.zeros_like(values)
    return (np.log(values) - math.log(vmin)) / (math.log(vmax) - math.log(vmin))


def colormap(positions):
    """Viridis: positions in [0, 1] -> uint8 RGB `[..., 3]`, dark blue to yellow (luminance
    rises)."""
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
            inner.append(mantissa * 10**exponent)
    inner = [v for v in inner if vmin * 1.15 < v < vmax / 1.15]
    if len(inner) > 4:
        inner = [v for v in inner if str(v)[0] == "1"]
    return [vmin] + inner + [vmax]


def _format_calls(value):
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def colorbar(vmin, vmax, height, bar_width=12):
    """uint8 `[height, width, 3]`: a vertical log colour bar (vmin at the bottom), tick labels."""
    font = _font()
    ticks = _log_ticks(vmin, vmax)
    _, measure = _canvas(1, 1)
    label_width = max(_text_size(measure, _format_calls(t), font)[0] for t in ticks)
    text_height = _text_size(measure, "0", font)[1]
    margin = text_height // 2 + 1  # room for the half labels at either end
    bar_height = max(height - 2 * margin, 2)
    image, draw = _canvas(height, bar_width + 4 + label_width + 2)
    bar = colormap(np.linspace(1.0, 0.0, bar_height))[:, None, :].repeat(bar_width, axis=1)
    image.paste(_pil(bar), (0, margin))
    for tick in ticks:
        y = margin + int(round((1.0 - log_position(tick, vmin, vmax)) * (bar_height - 1)))
        draw.line([(bar_width, y), (bar_width + 2, y)], fill=(0, 0, 0))
        draw.text(
            (bar_width + 4, y - text_height // 2 - 1),
            _format_calls(tick),
            fill=(0, 0, 0),
            font=font,
        )
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
        top = height - picture.shape[0]  # bottom-aligned: the maps share a baseline
        out[top:, left : left + picture.shape[1]] = picture
        left += picture.shape[1] + gap
    return out


def convergence_figure(maps, scale=None):
    """[1, Figure 6]: named `[H, W]` mean-iteration maps side by side on one log colour scale.

    Args:
      maps: `{title: float [H, W]}`, e.g. `{"fpi": ..., "ancestral": ...}`, in display order.
      scale: pixel upscaling (default: about 128 pixels high).

    Returns `(picture uint8 [h, w, 3], (vmin, vmax))`: the scale runs from iteration 1 (the first
    ARM call) to the largest value shown; each panel is titled with its name and value range.
    """
    maps = {name: np.asarray(m, np.float64) for name, m in maps.items()}
    vmin = 1.0
    vmax = max(vmin * 2, max(float(m.max()) for m in maps.values()))
    height, width = next(iter(maps.values())).shape
    scale = scale or min(auto_scale(height, 128), max(1, 1024 // width))
    panels = []
    for name, values in maps.items():
        coloured = colorize_log(values, vmin, vmax).repeat(scale, 0).repeat(scale, 1)
        panels.append(
            _titled(
                coloured,
                [name, f"calls {_format_calls(values.min())} to {_format_calls(values.max())}"],
            )
        )
    panel_height = panels[0].shape[0]
    image_height = next(iter(maps.values())).shape[0] * scale
    bar = colorbar(vmin, vmax, image_height)
    bar = np.concatenate(
        [np.full((panel_height - image_height, bar.shape[1], 3), 255, np.uint8), bar], axis=0
    )
    return _side_by_side(panels + [bar]), (vmin, vmax)
