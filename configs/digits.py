"""Demo: a small one-scale ARM on the embedded 8x8 `digits` (17 grey levels), ~1.5 min on 2 cores.

Test bpd 1.929 (BUILD_NOTES.md, "Training").
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits"
    config.model.num_resnets = 2
    config.model.filters = 32
    config.training.steps = 1500
    config.training.batch_size = 64
    return config
