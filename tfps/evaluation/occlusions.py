"""FARM's inpainting cases and their scores [1, sec. 4.1, Table 1].

An occlusion is a rectangle of whole pixels, rows [y0, y1) x columns [x0, x1). FARM's three cases
draw random rectangles: `best` at the top-left corner (where an ordering that starts at the bottom
right has seen every other pixel), `average` anywhere, `worst` at the bottom-right corner (where
the raster order has). FARM does not give the rectangles' sizes; here each side is drawn uniformly
from [ceil(S / 4), ceil(S / 2)] of the image side S, the position uniformly where it fits (at the
corner for best and worst). `x0,y0,x1,y1` names one rectangle.

`score` inpaints images under masks with a `tfps.sampling.inpainting.Inpainter` and reports, per
occluded variable o (in the ordering the inpainter chose, nats), two NLLs of the true values x_o:

    nll            = -mean_o log p(x_o | x_<o)          teacher-forced: the true earlier values
                                                        (exact where the ordering puts every
                                                        visible variable first)           (1)
    nll_given_fill = -mean_o log p(x_o | x~_<o)         FARM's [1, Table 1]: the visible values
                                                        and the *sampled* earlier values x~ of
                                                        the fill                          (2)

(2) is what FARM's `fill_occlusion` computes: each occluded pixel is drawn, in order, after the
true pixel is scored under the conditional that drew it. Both are averaged over the examples of
a mask and then over the masks. With them: FARM's L2 (the squared error of the sampled fill,
values scaled to [0, 1] by K - 1), the share of exact masks and the ARM calls.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import math

import numpy as np

from tfps.sampling import noise as noise_lib

CASES = ("best", "average", "worst")


def parse_occlusion(text, height, width):
    """`text`: one of `CASES`, or `x0,y0,x1,y1` (one rectangle). -> the case name, or the
    rectangle `(y0, x0, y1, x1)`; ValueError naming what is wrong."""
    if text in CASES:
        return text
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"occlusion must be one of {', '.join(CASES)} or x0,y0,x1,y1 (pixels), got {text!r}"
        ) from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(
            f"occlusion {text!r} is not a rectangle inside the {height}x{width} image "
            "(0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)"
        )
    if (x1 - x0) * (y1 - y0) == height * width:
        raise ValueError(f"occlusion {text!r} covers the whole image: nothing is visible")
    return (y0, x0, y1, x1)


def rectangles(case, count, height, width, seed=0):
    """`count` rectangles `(y0, x0, y1, x1)` of FARM's `case` (see the module)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(count)):
        h = int(rng.integers(math.ceil(height / 4), math.ceil(height / 2) + 1))
        w = int(rng.integers(math.ceil(width / 4), math.ceil(width / 2) + 1))
        if case == "best":
            y0, x0 = 0, 0
        elif case == "worst":
            y0, x0 = height - h, width - w
        else:
            y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        out.append((y0, x0, y0 + h, x0 + w))
    return out


def visible_of(rectangle, height, width):
    """bool `[H, W]`: true outside the rectangle."""
    y0, x0, y1, x1 = rectangle
    visible = np.ones((height, width), bool)
    visible[y0:y1, x0:x1] = False
    return visible


def score(inpainter, images, rectangle_list, method="fpi", seed=0):
    """Inpaints every image under every rectangle (the noise of mask r from seed `seed + r`):
    `{l2, nll, nll_given_fill, exact_share, arm_calls, fills}`, the means per occluded variable
    over all of them (`nll` teacher-forced, eq. 1; `nll_given_fill` FARM's, eq. 2; `fills`: int
    `[R, N, *event_shape]`)."""
    images = np.asarray(images, np.int32)
    n, (height, width) = len(images), images.shape[1:3]
    k = int(inpainter.model.num_categories)
    l2, nll, given_fill, exact, calls, fills = [], [], [], [], 0, []
    for r, rectangle in enumerate(rectangle_list):
        visible = np.repeat(visible_of(rectangle, height, width)[None], n, axis=0)
        noise = noise_lib.gumbel_noise(images.shape + (k,), seed + r).numpy()
        filled = inpainter.inpaint(images, visible, noise, method)
        samples = filled.result.samples.numpy()
        occluded = ~np.broadcast_to(visible[..., None], images.shape)
        error = ((samples - images) / max(k - 1, 1)) ** 2
        l2.append((error * occluded).reshape(n, -1).sum(1) / occluded.reshape(n, -1).sum(1))
        values, _, is_exact = inpainter.nll(images, visible)
        nll.append(values)
        # FARM's: the same orderings (chosen from the mask alone), conditionals on the fill.
        given_fill.append(inpainter.nll(images, visible, seen=samples)[0])
        exact.append(is_exact)
        calls += int(filled.result.arm_calls)
        fills.append(samples)
    return {
        "l2": float(np.mean(l2)),
        "nll": float(np.mean(nll)),
        "nll_given_fill": float(np.mean(given_fill)),
        "exact_share": float(np.mean(exact)),
        "arm_calls": calls / len(rectangle_list),
        "fills": np.stack(fills),
    }
