"""Checks on the trained Transformer runs that ancestral_cached (the sampler's key/value-cached
loop) returns the ancestral sample, seeds 0-9, batch 1 and 32, the noise of the benchmark."""

import sys

import numpy as np

from tfps import loading

for run in sys.argv[1:]:
    sampler = loading.load(run).sampler
    for batch in (1, 32):
        for seed in range(10):
            a = sampler.sample_from_seed(seed, batch, "ancestral")
            c = sampler.sample_from_seed(seed, batch, "ancestral_cached")
            assert np.array_equal(a.samples, c.samples), (run, batch, seed)
            assert int(c.arm_calls) == sampler.num_variables
        print(f"{run} B={batch}: ancestral_cached == ancestral for seeds 0-9")
