#!/usr/bin/env bash
# The embedded latent-space configuration ([1, sec. 4.2, Table 2], offline): a discrete
# autoencoder on digits32 (32x32x1, 8 bit) with a 4 x 8 x 8 latent of 32 categories, a PixelCNN on
# its frozen latents, samples with decoded images, and the Table 2 benchmark. The numbers are in
# docs/latent_results.md. Rerunning resumes finished steps.
# [1] Wiggers & Hoogeboom, Predictive Sampling with Forecasting Autoregressive Models, ICML 2020.
source "$(dirname "$0")/demo_common.sh" "${1:-runs/latent}"

$PY -m launch.train_autoencoder --config=configs/latent_autoencoder.py --logdir="$RUNS/digits32_ae"
$PY -m launch.train --config=configs/latent_arm.py --logdir="$RUNS/digits32_arm" \
  --config.data.latents_from="$RUNS/digits32_ae"
for method in ancestral fpi; do
  $PY -m launch.sample --model="$RUNS/digits32_arm" --method="$method" --num_samples=16 \
    --batch_size=16 --seed=0
done
$PY -m launch.benchmark --model="$RUNS/digits32_arm" --batch_sizes=1,32 --num_seeds=10 \
  --tfp_peer=false --scheduled_samples=0
