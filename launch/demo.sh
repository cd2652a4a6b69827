#!/usr/bin/env bash
# `make demo`: every stage on the embedded data in minutes on 2 CPU cores: a short training run (it
# trains and resumes like any run), sampling with every method from the two demo ARMs, a
# SavedModel export sampled back, the Table 1 speed tables, anytime sampling and TensorBoard.
#
# The two demo ARMs (configs/digits.py, configs/digits28_binary.py) come trained with the
# repository in pretrained/ (pretrained/README.md says how they were made) and are copied to
# $RUNS; `DEMO_TRAIN=full` (`make demo DEMO_TRAIN=full`) trains them here instead, about 18 more
# minutes on 2 cores. Rerunning resumes or reuses what is there. Sampling and benchmark summaries
# go next to each run: `tensorboard --logdir=runs/demo` shows bpd, ARM calls, forecast accuracy,
# mistake maps and convergence maps (docs/inspection.md).
source "$(dirname "$0")/demo_common.sh" "${1:-runs/demo}"
DEMO_TRAIN=${DEMO_TRAIN:-short}

echo "== training works: 100 steps of configs/digits.py in $RUNS/digits_short (resumable)"
$PY -m launch.train --config=configs/digits.py --logdir="$RUNS/digits_short" \
  --config.training.steps=100 --config.training.eval_every=100 --config.training.eval_batches=2

for name in digits digits28_binary; do
  if [[ "$DEMO_TRAIN" == full ]]; then
    echo "== training $name with configs/$name.py (resumes if $RUNS/$name exists)"
    $PY -m launch.train --config="configs/$name.py" --logdir="$RUNS/$name"
  elif [[ ! -e "$RUNS/$name" ]]; then
    echo "== $name: the shipped run pretrained/$name (trained with configs/$name.py) to $RUNS/$name"
    cp -r "pretrained/$name" "$RUNS/$name"
  fi
done

# 16 samples of digits, 8 of digits28_binary (its ancestral loop makes 784 calls of a 3-scale ARM).
for name in digits digits28_binary; do
  echo "== sampling $name with every method (the same samples, different ARM calls)"
  count=$([[ $name == digits ]] && echo 16 || echo 8)
  $PY -m launch.sample --model="$RUNS/$name" --method=ancestral,zeros,last,fpi,fpi_argmax \
    --num_samples="$count" --batch_size="$count" --seed=0 --logdir="$RUNS/$name"
done

# Under $RUNS, so that the demo leaves the shipped exported/digits/1 (and `git status`) alone.
echo "== exporting digits as a SavedModel to $RUNS/exported/digits/1 (TF Serving layout)"
$PY -m launch.export --model="$RUNS/digits" --export_dir="$RUNS/exported" --name=digits --version=1 \
  --overwrite
$PY -m launch.sample --model="$RUNS/exported/digits" --method=fpi --num_samples=16 --batch_size=16 \
  --seed=0 --output_dir="$RUNS/digits/samples_from_export"

# Table 1's format with 3 seeds (BUILD_NOTES.md has the 10-seed tables of these models and their
# commands); on the 784-variable set (a 3-scale ARM) batch 1 only, as ancestral sampling at batch
# 32 takes minutes per seed on 2 CPU cores.
echo "== benchmark digits (Table 1 format, seeds 0-2)"
$PY -m launch.benchmark --model="$RUNS/digits" --batch_sizes=1,32 --num_seeds=3 --peer_seeds=1 \
  --logdir="$RUNS/digits"
echo "== benchmark digits28_binary (Table 1 format, batch 1, seeds 0-2)"
$PY -m launch.benchmark --model="$RUNS/digits28_binary" --batch_sizes=1 --num_seeds=3 --peer_seeds=1 \
  --scheduled_samples=0 --logdir="$RUNS/digits28_binary"

# Anytime sampling (docs/anytime.md): an ordered code, a prior over it, then samples decoded from
# the first 2, 4, 6 and 8 of its 8 codes, one row per length, the same noise in every row.
echo "== anytime sampling: an ordered code of digits, a Transformer prior, samples from 2-8 codes"
$PY -m launch.train_autoencoder --config=configs/anytime_autoencoder_digits.py \
  --logdir="$RUNS/anytime_autoencoder"
$PY -m launch.train --config=configs/anytime_prior.py --logdir="$RUNS/anytime_prior" \
  --config.data.latents_from="$RUNS/anytime_autoencoder" --config.model.filters=64 \
  --config.model.num_layers=2 --config.training.steps=400 --config.training.eval_every=400 \
  --config.training.checkpoint_every=400
$PY -m launch.anytime --model="$RUNS/anytime_prior" --num_codes=2,4,6,8 --num_samples=8 --seed=0 \
  --classifier_steps=0  # no Frechet distance: 8 samples are too few for one

echo "== TensorBoard serves the summaries (started on 127.0.0.1, checked, stopped)"
$PY -m launch.check_tensorboard --logdir="$RUNS" --timeout=120
