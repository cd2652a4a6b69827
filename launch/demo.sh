#!/usr/bin/env bash
# `make demo`: train small ARMs on the embedded data, sample with every method, export a
# SavedModel and print the speed tables. Rerunning resumes finished steps (training is resumable).
# Sampling and benchmark summaries go next to each training run: `tensorboard --logdir=runs/demo`
# shows bpd, ARM calls, forecast accuracy, mistake maps and convergence maps (docs/inspection.md).
source "$(dirname "$0")/demo_common.sh" "${1:-runs/demo}"

# The demo presets (configs/digits.py, configs/digits28_binary.py), recorded in BUILD_NOTES.md.
for name in digits digits28_binary; do
  echo "== training $name with configs/$name.py (resumes if $RUNS/$name exists)"
  $PY -m launch.train --config="configs/$name.py" --logdir="$RUNS/$name"
done

for name in digits digits28_binary; do
  echo "== sampling $name with every method (the same samples, different ARM calls)"
  for method in ancestral zeros last fpi fpi_argmax; do
    $PY -m launch.sample --model="$RUNS/$name" --method="$method" --num_samples=16 --batch_size=16 --seed=0 \
      --logdir="$RUNS/$name"
  done
done

# Under $RUNS, so that the demo leaves the shipped exported/digits/1 (and `git status`) alone.
echo "== exporting digits as a SavedModel to $RUNS/exported/digits/1 (TF Serving layout)"
$PY -m launch.export --model="$RUNS/digits" --export_dir="$RUNS/exported" --name=digits --version=1 \
  --overwrite
$PY -m launch.sample --model="$RUNS/exported/digits" --method=fpi --num_samples=16 --batch_size=16 \
  --seed=0 --output_dir="$RUNS/digits/samples_from_export"

# Table 1 at batch 1 and 32 on digits; on the 784-variable set (a 3-scale ARM) batch 1 only, as
# ancestral sampling at batch 32 takes minutes per seed on 2 CPU cores. BUILD_NOTES.md has both.
echo "== benchmark digits (Table 1 format, seeds 0-9)"
$PY -m launch.benchmark --model="$RUNS/digits" --batch_sizes=1,32 --num_seeds=10 --peer_seeds=1 \
  --logdir="$RUNS/digits"
echo "== benchmark digits28_binary (Table 1 format, batch 1, seeds 0-9)"
$PY -m launch.benchmark --model="$RUNS/digits28_binary" --batch_sizes=1 --num_seeds=10 --peer_seeds=1 \
  --scheduled_samples=0 --logdir="$RUNS/digits28_binary"

echo "== TensorBoard serves the summaries (started on 127.0.0.1, checked, stopped)"
$PY -m launch.check_tensorboard --logdir="$RUNS" --timeout=120
