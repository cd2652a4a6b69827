#!/usr/bin/env bash
# The embedded latent-space configuration (seed 000, section 4.2 and Table 2, offline): a discrete
# autoencoder on digits32 (32x32x1, 8 bit) with a 4 x 8 x 8 latent of 32 categories, a PixelCNN on
# its frozen latents, samples with decoded images, and the Table 2 benchmark. The numbers are in
# docs/latent_results.md. Rerunning resumes finished steps.
source "$(dirname "$0")/demo_common.sh" "${1:-runs/latent}"

$PY -m launch.train_autoencoder --logdir="$RUNS/digits32_ae" --dataset=digits32 --width=64 \
  --latent_channels=4 --latent_categories=32 --steps=600 --learning_rate=1e-3 \
  --eval_every=200 --checkpoint_every=200 --log_every=50 --eval_batches=10
$PY -m launch.train --logdir="$RUNS/digits32_arm" --latents_from="$RUNS/digits32_ae" \
  --num_resnets=2 --filters=64 --steps=2000 --learning_rate=1e-3 --eval_every=250 \
  --checkpoint_every=500 --log_every=100 --eval_batches=10
for method in ancestral fpi; do
  $PY -m launch.sample --model="$RUNS/digits32_arm" --method="$method" --num_samples=16 \
    --batch_size=16 --seed=0
done
$PY -m launch.benchmark --model="$RUNS/digits32_arm" --batch_sizes=1,32 --num_seeds=10 \
  --tfp_peer=false --scheduled_samples=0
