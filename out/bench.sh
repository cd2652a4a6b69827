#!/bin/bash
# The Transformer benchmarks of /work/runs/fam/run.sh, now with the ancestral_cached row.
cd /work/wt/tcache
R=/work/runs/fam
bench() { nice -n 5 /work/main/.venv/bin/python -m launch.benchmark --model=$R/$1 --tfp_peer=false --scheduled_samples=0 --output=out/$1/table "${@:2}" > out/bench_$1.log 2>&1; }
bench transformer_digits --batch_sizes=1,32 --num_seeds=10
bench transformer_text --batch_sizes=1,32 --num_seeds=10
echo done > out/done
