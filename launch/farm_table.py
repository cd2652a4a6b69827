"""FARM's Table 1 layout [1]: inpainting scores of several runs side by side, one row per run.

    for case in best average worst; do
      python -m launch.inpaint --model=runs/farm_k8_mc --occlusion=$case --num_images=100 \
          --num_masks=100
    done  # and the same for every run
    python -m launch.farm_table --models=runs/farm_k1_mc,runs/farm_k8_mc --output=runs/table1

Reads, per run, its config.json (the number of orderings k and the `ordering_objective`),
metrics.json (the test bits per dimension of ordering 0 and, for a family, of the mixture
log mean_k p(x | pi_k)) and the scores `launch.inpaint` wrote for each case of `--cases`
(`<run>/inpaint/inpaint_<case>.json`: L2 and both NLLs per occluded pixel, the share of exact
NLLs; `tfps.evaluation.occlusions`); writes `<output>.md` / `.json`: per run k (the orderings the
model records), objective, bpd, and per case L2, the teacher-forced NLL (each true occluded pixel
given the true earlier pixels) and FARM's NLL (given the sampled earlier pixels of the fill, as
FARM's `fill_occlusion` computes it). Every case of a table must have been scored with the same
masks, images and method (else one clear error).

#### References

[1]: Mihir Patel, Vinjai Vale, Eric Frankel. FARM: Family of AutoRegressive Models. Stanford
     University, report.
"""

import os
import sys

if __package__ in (None, ""):  # `python launch/farm_table.py`: the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from tfps.evaluation import benchmarking
from tfps.models import family
from tfps.train import rundir

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "Training run directories, one row each.", required=True)
flags.DEFINE_list("cases", ["best", "average", "worst"], "Occlusion cases, one column pair each.")
flags.DEFINE_string("output", None, "Output prefix of the .md / .json.", required=True)
SAME = ("num_images", "num_masks", "method", "seed")  # flags every score of a table shares
SCORES = ("l2", "nll", "nll_given_fill", "exact_share")


def _row(run):
    """`(row, protocol)` of a run: its settings and scores, and the flags its scores used."""
    config = rundir.read_config(run)
    model, config = config["model"], config["train"]
    metrics = rundir.read_json(os.path.join(run, rundir.METRICS_FILE)) or {}
    k = len(family.orderings_of(model.get("orderings"), model["event_shape"]))  # as built
    row = dict(
        run=os.path.basename(os.path.normpath(run)), k=k,
        objective=config.get("ordering_objective") or "mc" if k > 1 else "-",
        test_bpd=metrics.get("test_bpd"), mixture_bpd=metrics.get("test_mixture_bpd"), cases={},
    )  # fmt: skip
    protocol = None
    for case in FLAGS.cases:
        path = os.path.join(run, "inpaint", f"inpaint_{case}.json")
        scores = rundir.read_json(path)
        if not isinstance(scores, dict) or "l2" not in scores:
            raise FileNotFoundError(
                f"{path}: no scores of case {case!r}; run python -m launch.inpaint "
                f"--model={run} --occlusion={case} first"
            )
        used = {flag: scores["flags"][flag] for flag in SAME}
        if protocol not in (None, used):
            raise ValueError(f"{path} was scored with {used}, the other cases with {protocol}")
        protocol = used
        if "nll_given_fill" not in scores:
            raise ValueError(
                f"{path} has no nll_given_fill (scored before it): run launch.inpaint again"
            )
        row["cases"][case] = {key: scores[key] for key in SCORES}
    return row, protocol


def _number(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def _table(rows, protocol):
    lines = [
        f"**Inpainting, {protocol['num_masks']} masks x {protocol['num_images']} test images per "
        f"case, method {protocol['method']}, seed {protocol['seed']}: L2 / NLL / FARM NLL per "
        "occluded pixel (nats)**",
        "",
        "L2: the squared error of the sampled fill. NLL: teacher-forced, each true occluded pixel "
        "given the true earlier pixels in the chosen ordering. FARM NLL: each true occluded pixel "
        "given the sampled earlier pixels of the fill, as FARM's `fill_occlusion` scores it.",
        "",
        "| run | k | objective | test bpd | mixture bpd | "
        + " | ".join(f"{case}: L2 / NLL / FARM NLL" for case in FLAGS.cases)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(FLAGS.cases),
    ]
    for r in rows:
        cells = [" / ".join(_number(c[key], 4) for key in SCORES[:3]) for c in r["cases"].values()]
        lines.append(
            f"| {r['run']} | {r['k']} | {r['objective']} | {_number(r['test_bpd'], 4)} | "
            f"{_number(r['mixture_bpd'], 4)} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        rows, protocols = zip(*(_row(run) for run in FLAGS.models))
        if len(set(map(str, protocols))) > 1:
            raise ValueError(f"the runs were scored with different flags: {list(protocols)}")
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e)) from e
    table = _table(rows, protocols[0])
    benchmarking.write_table(FLAGS.output, table, {"protocol": protocols[0], "rows": rows})
    print(table)
    print(f"wrote {FLAGS.output}.md, .json")


if __name__ == "__main__":
    app.run(main)
