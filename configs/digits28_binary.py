"""Demo: the 3-scale PixelCNN++ (28 -> 14 -> 7) on the embedded binary 28x28 digits.

Dropout 0.1 instead of Table 4's 0.5 for this small model (BUILD_NOTES.md: 0.5 underfits at 32
filters); batch 16, the fastest per image on 2 CPU cores. Test bpd 0.110. For MNIST's layout:
`--config.data.dataset=digits28_binary_centred`.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits28_binary"
    config.model.num_scales = 3
    config.model.num_resnets = 2
    config.model.filters = 32
    config.model.dropout_rate = 0.1
    config.training.steps = 1000
    config.training.batch_size = 16
    return config
