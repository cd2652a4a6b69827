"""Inpaint test images of a trained run in the ordering that sees the most evidence (FARM [1]).

    python -m launch.inpaint --model=runs/farm --occlusion=best --num_images=16 --num_masks=4

Occludes `--num_images` images of the run's test split with `--num_masks` rectangles of FARM's
case (`best`: at the top-left corner, `average`: anywhere, `worst`: at the bottom-right; or one
rectangle `x0,y0,x1,y1`; `tfps.evaluation.occlusions`), fills them with `--method` in the
ordering with the most evidence per image (a family of orderings, arch farm_made; any other ARM
in raster order; `tfps.sampling.inpainting`), and writes to `--output_dir` (default
`<run>/inpaint`):

- `inpaint_<occlusion>.png`: per mask, the originals, the occluded images (occluded pixels grey)
  and the fills, one row each;
- `inpaint_<occlusion>.md` / `.json`: per occluded pixel L2 (of the sampled fill), the
  teacher-forced NLL (`nll`: each true pixel given the true earlier ones) and FARM's NLL
  (`nll_given_fill`: given the sampled earlier pixels of the fill, as FARM scores it), the share
  of masks whose teacher-forced NLL is exact (every visible pixel before every occluded one), ARM
  calls per mask; the .json's
  `flags` record what was run: `num_images` the images inpainted (fewer than asked when the test
  split has fewer), `num_masks` the rectangles (1 for an explicit rectangle);
- with `--logdir`, the picture and the scores in TensorBoard, run `<logdir>/inpaint_<occlusion>`.

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/inpaint.py`: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import tensorflow as tf
from absl import app, flags

from tfps import data
from tfps.evaluation import benchmarking, occlusions, pictures
from tfps.sampling import inpainting
from tfps.train import config as config_lib
from tfps.train import training

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A training run directory or checkpoint prefix.", required=True)
flags.DEFINE_string(
    "occlusion", "average", "best, average, worst (FARM's cases) or x0,y0,x1,y1 (one rectangle)."
)
flags.DEFINE_integer("num_images", 16, "Test images to inpaint.", lower_bound=1)
flags.DEFINE_integer("num_masks", 1, "Random rectangles of the case (FARM: 100).", lower_bound=1)
flags.DEFINE_string("method", "fpi", "Sampling method of the fills (every method: the same).")
flags.DEFINE_integer("seed", 0, "Seed of the rectangles and of the Gumbel noise.")
flags.DEFINE_string("output_dir", None, "Where to write (default: <model>/inpaint).")
flags.DEFINE_string("logdir", None, "Also write TensorBoard summaries under <logdir>.")
GREY = 128
OWN_FLAGS = ("model", "occlusion", "num_images", "num_masks", "method", "seed")


def _test_images(config, count):
    train_config = config_lib.TrainConfig.from_dict(config["train"])
    opened = data.open(train_config)
    if len(opened.info.image_shape) != 3:
        raise ValueError(f"inpainting occludes images; {opened.info.name} holds sequences")
    images = np.stack(list(opened.load("test").take(count).as_numpy_iterator()))
    return images.astype(np.int32), opened.info


def _picture(images, rectangles, fills, k):
    """Rows per mask: the originals, the occluded images, the fills."""
    rows = []
    for rectangle, filled in zip(rectangles, fills):
        occluded = pictures.to_picture(images, k).copy()
        y0, x0, y1, x1 = rectangle
        occluded[:, y0:y1, x0:x1] = GREY
        rows += [pictures.to_picture(images, k), occluded, pictures.to_picture(filled, k)]
    scale = pictures.auto_scale(images.shape[1], target=48)
    return pictures.grid(np.concatenate(rows), columns=len(images), scale=scale)


def _table(name, scores, info, num_masks, num_images):
    return "\n".join([
        f"**{name}: {info.name}, occlusion {FLAGS.occlusion}, {num_masks} mask(s) x "
        f"{num_images} images, method {FLAGS.method}**",
        "",
        "| L2 per occluded pixel | NLL per occluded pixel (nats) | FARM's NLL, given the fill "
        "(nats) | exact NLL | ARM calls per mask |",
        "|---|---|---|---|---|",
        f"| {scores['l2']:.4f} | {scores['nll']:.4f} | {scores['nll_given_fill']:.4f} "
        f"| {scores['exact_share']:.0%} | {scores['arm_calls']:.1f} |",
    ])  # fmt: skip


def _inputs():
    """`(painter, config, images, info, rectangles)` of the flags; ValueError or
    FileNotFoundError for a bad flag, run or test split (before anything is computed)."""
    model, config = training.load_trained(FLAGS.model)
    images, info = _test_images(config, FLAGS.num_images)
    height, width = info.image_shape[:2]
    occlusion = occlusions.parse_occlusion(FLAGS.occlusion, height, width)
    rectangles = (
        [occlusion]
        if isinstance(occlusion, tuple)
        else occlusions.rectangles(occlusion, FLAGS.num_masks, height, width, FLAGS.seed)
    )
    painter = inpainting.Inpainter(model)
    painter.sampler(0).check_method(FLAGS.method)
    return painter, config, images, info, rectangles


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:  # only the flags and inputs: an error of the computation keeps its traceback
        painter, config, images, info, rectangles = _inputs()
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    scores = occlusions.score(painter, images, rectangles, FLAGS.method, FLAGS.seed)
    output_dir = FLAGS.output_dir or os.path.join(config["logdir"], "inpaint")
    os.makedirs(output_dir, exist_ok=True)
    name = f"inpaint_{FLAGS.occlusion.replace(',', '_')}"
    picture = _picture(images, rectangles, scores.pop("fills"), info.num_categories)
    pictures.write_png(os.path.join(output_dir, f"{name}.png"), picture)
    ran = {"num_images": len(images), "num_masks": len(rectangles)}  # what was run
    run = os.path.basename(os.path.normpath(config["logdir"]))
    table = _table(run, scores, info, ran["num_masks"], ran["num_images"])
    flag_values = {**{flag: FLAGS[flag].value for flag in OWN_FLAGS}, **ran}
    record = {**scores, "rectangles": rectangles, "flags": flag_values}
    benchmarking.write_table(os.path.join(output_dir, name), table, record)
    if FLAGS.logdir:
        with tf.summary.create_file_writer(os.path.join(FLAGS.logdir, name)).as_default():
            tf.summary.image(name, picture[None], step=config["step"])
            for key in ("l2", "nll", "nll_given_fill", "exact_share", "arm_calls"):
                tf.summary.scalar(f"inpaint/{key}", scores[key], step=config["step"])
    print(table)
    print(f"wrote {os.path.join(output_dir, name)}.png, .md, .json")


if __name__ == "__main__":
    app.run(main)
