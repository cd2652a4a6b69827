"""Gated PixelCNN [1] on the embedded binary 28x28 digits in MNIST's layout (centred).

Five gated layers of 32 channels with 5-wide kernels (vertical [3, 5], horizontal [1, 3]), no
blind spot (`tfps.models.gated_pixelcnn`); batch 16 as `configs/digits28_binary.py`. Needs the
`model.arch` and generic model fields (`num_layers`, `kernel_size`) of tfps.train.config.

#### References

[1]: Aaron van den Oord, Nal Kalchbrenner, Oriol Vinyals, Lasse Espeholt, Alex Graves, Koray
     Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders. In NeurIPS, 2016.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.dataset = "digits28_binary_centred"
    config.model.arch = "gated_pixelcnn"
    config.model.filters = 32
    config.model.num_layers = 5
    config.model.kernel_size = 5
    config.model.dropout_rate = 0.0
    config.training.steps = 1000
    config.training.batch_size = 16
    return config
