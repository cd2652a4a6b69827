"""The exactness core under TensorFlow's default x86 CPU kernels (oneDNN).

The suite runs with `TF_ENABLE_ONEDNN_OPTS=0` (tests/conftest.py: faster for tiny shapes); this
test runs in a fresh process with oneDNN on, as users' x86 TensorFlow does by default: every
method of the library, windows of incremental calls and an export of a trained tiny model return
the ancestral sample of the independent oracle for the same noise (Wiggers & Hoogeboom, ICML 2020,
eq. 8).
"""

import json
import os
import platform
import sys

from launchers import REPO, run

SCRIPT = """
import json, sys, tempfile
import numpy as np
from tfps.sampling import noise as noise_lib, predictive
from tfps.serving import export, exported_sampler
import oracles
from tiny_models import trained_model, tiny_model
out = {"onednn": None, "wrong": []}
from tensorflow.python.util import _pywrap_util_port
out["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
cases = {"trained_6x5x1_k2": trained_model((6, 5, 1), 2),
         "three_scales_5x4x3_k3": tiny_model((5, 4, 3), 3, filters=4, num_scales=3)}
for name, model in cases.items():
    noise = noise_lib.gumbel_noise((3,) + model.image_shape + (model.num_categories,), 7)
    reference = oracles.ancestral_reference(model, noise)
    samplers = {"windows": predictive.sampler_for_model(model, incremental=1)}
    methods = {"windows": ("ancestral_cached", "fpi") if model.num_scales == 1 else ("fpi",)}
    if model.num_scales == 1:  # every method plain; three scales: the windows of fpi only
        samplers["plain"] = predictive.sampler_for_model(model)
        methods["plain"] = samplers["plain"].methods
    for label, sampler in samplers.items():
        for method in methods[label]:
            got = sampler.sample(noise, method).samples.numpy()
            if not np.array_equal(got, reference):
                out["wrong"].append(f"{name} {label} {method}")
    if model.num_scales == 1:
        with tempfile.TemporaryDirectory() as base:
            served = exported_sampler.load_exported(export.export_model(model, base + "/m"))
            for method in served.methods:
                if not np.array_equal(served.sample(noise, method).samples.numpy(), reference):
                    out["wrong"].append(f"{name} export {method}")
print(json.dumps(out))
"""


def test_every_method_is_exact_with_onednn_kernels():
    env = {"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
           "TF_ENABLE_ONEDNN_OPTS": "1"}  # fmt: skip
    result = run([sys.executable, "-c", SCRIPT], env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["wrong"] == []
    if platform.machine() in ("x86_64", "AMD64"):  # oneDNN is TensorFlow's x86 default
        assert out["onednn"], "TF_ENABLE_ONEDNN_OPTS=1 did not turn oneDNN on"
