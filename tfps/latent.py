"""The discrete-latent autoencoder of seed 000, section 4.2 and Appendix A.3, and its latents.

Rate-distortion objective (eq. 11), with x normalised to [-1, 1]:

    L(x) = l(x, G(z)) - beta * log P(z),    z = Q(x),    l = MSE,    beta = 0.1

The paper trains the autoencoder first (MSE only: no prior yet), freezes it, and then trains the
PixelCNN ARM P(z) on the encoder's latents (`TrainConfig.latents_from` in `tfps.training`).
`autoencoder_loss` takes an optional prior for the rate term; the rate is reported in nats per
image dimension, -log P(z) / (H * W * C), so that it is on the MSE's per-dimension scale.

Encoder Q (width F, "half width" F/2; every convolution but the last is followed by a ReLU):

    conv 3x3 F/2 -> conv 3x3 F/2 -> conv 4x4/2 F/2 -> conv 4x4/2 F -> BasicBlock F -> BasicBlock F
    -> conv 1x1 c * K                                  [B, H, W, C] -> logits a [B, H/4, W/4, c, K]

with BasicBlock(y) = relu(y + bn(conv3x3(relu(bn(conv3x3(y)))))) (He et al. 2016, torchvision).
Quantisation: z = onehot(argmax_k softmax(a)_k) in the forward pass, and the straight-through
estimator in the backward pass: dz/da := d softmax(a)/da (`straight_through_one_hot`).
Decoder G mirrors Q:

    conv 1x1 F -> BasicBlock F -> BasicBlock F -> convT 4x4/2 F (ReLU) -> convT 4x4/2 F/2 (ReLU)
    -> conv 3x3 F/2 (ReLU) -> conv 3x3 C               one-hot z [B, h, w, c, K] -> [B, H, W, C]

C is the data's channel count (3 for the paper's colour data, 1 for `digits32`). The paper's
configuration: F = 512, a 4 x 8 x 8 latent (c = 4 channels) with K = 128 categories, 32x32 images.

Latents are int32 `[B, h, w, c]` with values in [0, K): the ARM models them as an "image" of shape
(h, w, c) with K categories in raster-then-channel order, exactly like image data, so every
sampler works on them unchanged. Decoded images are float32 `[B, H, W, C]` in [-1, 1].

An autoencoder run directory holds config.json (format `tfps.autoencoder/1`), checkpoints/,
TensorBoard scalars (train/validation/test `mse`) and metrics.json, as an ARM run does
(`tfps.training`); the frozen encoder's latents of a split are cached in `latents/`.
"""
import dataclasses
import json
import math
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf
import keras

from tfps import data as tfps_data
from tfps import layers as tfps_layers
from tfps import pixelcnn
from tfps import summaries
from tfps import training

AUTOENCODER_FORMAT = "tfps.autoencoder/1"
LATENTS_DIR = "latents"
BETA = 0.1
DOWNSAMPLING = 4  # two stride-2 convolutions
PAPER_CONFIG = dict(width=512, latent_channels=4, latent_categories=128)


# ----------------------------------------------------------------------------- quantisation


def straight_through_one_hot(logits):
    """One-hot argmax of softmax(logits) with the softmax's gradient (straight-through).

    Forward: z = onehot(argmax_k a_k), exactly 0 / 1. Backward: the vector-Jacobian product of
    s = softmax(a), dL/da = s * (dL/dz - sum_k s_k dL/dz_k), as if z were s.
    `[..., K]` -> `[..., K]`.
    """
    @tf.custom_gradient
    def quantise(a):
        probs = tf.nn.softmax(a)
        one_hot = tf.one_hot(tf.argmax(a, axis=-1), a.shape[-1], dtype=a.dtype)

        def grad(dz):
            return probs * (dz - tf.reduce_sum(dz * probs, axis=-1, keepdims=True))
        return one_hot, grad
    return quantise(logits)


# ----------------------------------------------------------------------------- layers


def _conv(filters, kernel, strides=1, use_bias=True, name=None):
    # TF's "same" padding for a 4x4 / stride 2 kernel on even sizes pads 1 on each side: the
    # paper's padding 1; for 3x3 it is padding 1 too.
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                               use_bias=use_bias, name=name)


def _batch_norm(name):
    # PyTorch's BatchNorm2d defaults: running-average momentum 0.1 (Keras: 0.9), eps 1e-5.
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class BasicBlock(keras.layers.Layer):
    """ResNet BasicBlock (He et al. 2016; torchvision's, without downsampling).

        y = relu(x + bn2(conv2(relu(bn1(conv1(x))))))       conv: 3x3, `filters`, no bias

    Keeps the shape `[B, H, W, filters]`; the input must have `filters` channels.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv1 = _conv(self.filters, 3, use_bias=False, name="conv1")
        self.bn1 = _batch_norm("bn1")
        self.conv2 = _conv(self.filters, 3, use_bias=False, name="conv2")
        self.bn2 = _batch_norm("bn2")

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(f"BasicBlock({self.filters}) needs {self.filters} input channels, "
                             f"got {input_shape[-1]}")
        for layer in (self.conv1, self.bn1, self.conv2, self.bn2):
            layer.build(input_shape)

    def call(self, x, training=False):
        y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        return tf.nn.relu(x + self.bn2(self.conv2(y), training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _check_width(width):
    if int(width) < 2 or int(width) % 2:
        raise ValueError(f"width must be an even number >= 2, got {width}")
    return int(width)


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class Encoder(keras.layers.Layer):
    """Q: images `[B, H, W, C]` in [-1, 1] -> latent logits a `[B, H/4, W/4, c, K]`.

    See the module docstring for the layers; `width` F (paper 512), c `latent_channels`,
    K `latent_categories`.
    """

    def __init__(self, width, latent_channels, latent_categories, **kwargs):
        super().__init__(**kwargs)
        self.width = _check_width(width)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        half = self.width // 2
        self.conv_in1 = _conv(half, 3, name="conv_in1")
        self.conv_in2 = _conv(half, 3, name="conv_in2")
        self.down1 = _conv(half, 4, strides=2, name="down1")
        self.down2 = _conv(self.width, 4, strides=2, name="down2")
        self.block1 = BasicBlock(self.width, name="block1")
        self.block2 = BasicBlock(self.width, name="block2")
        self.to_latent = _conv(self.latent_channels * self.latent_categories, 1, name="to_latent")

    def build(self, input_shape):
        b, h, w, _ = input_shape
        half = self.width // 2
        self.conv_in1.build(input_shape)
        self.conv_in2.build((b, h, w, half))
        self.down1.build((b, h, w, half))
        quarter = (b, None if h is None else h // 4, None if w is None else w // 4)
        self.down2.build((b, None if h is None else h // 2, None if w is None else w // 2, half))
        for layer in (self.block1, self.block2, self.to_latent):
            layer.build(quarter + (self.width,))

    def call(self, x, training=False):
        y = tf.nn.relu(self.conv_in1(x))
        y = tf.nn.relu(self.conv_in2(y))
        y = tf.nn.relu(self.down1(y))
        y = tf.nn.relu(self.down2(y))
        y = self.block2(self.block1(y, training=training), training=training)
        logits = self.to_latent(y)
        shape = tf.shape(logits)
        return tf.reshape(logits, tf.concat(
            [shape[:3], [self.latent_channels, self.latent_categories]], axis=0))

    def get_config(self):
        return {**super().get_config(), "width": self.width,
                "latent_channels": self.latent_channels,
                "latent_categories": self.latent_categories}


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class Decoder(keras.layers.Layer):
    """G: one-hot latents `[B, h, w, c, K]` -> images `[B, 4h, 4w, output_channels]` (~[-1, 1]).

    Mirrors `Encoder` (module docstring); the output is linear (the MSE target is in [-1, 1]).
    """

    def __init__(self, width, latent_channels, latent_categories, output_channels, **kwargs):
        super().__init__(**kwargs)
        self.width = _check_width(width)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        self.output_channels = int(output_channels)
        half = self.width // 2
        self.from_latent = _conv(self.width, 1, name="from_latent")
        self.block1 = BasicBlock(self.width, name="block1")
        self.block2 = BasicBlock(self.width, name="block2")
        self.up1 = keras.layers.Conv2DTranspose(self.width, 4, strides=2, padding="same",
                                                name="up1")
        self.up2 = keras.layers.Conv2DTranspose(half, 4, strides=2, padding="same", name="up2")
        self.conv_out1 = _conv(half, 3, name="conv_out1")
        self.conv_out2 = _conv(self.output_channels, 3, name="conv_out2")

    def build(self, input_shape):
        b, h, w = input_shape[:3]
        scaled = lambda s, f: None if s is None else s * f
        half = self.width // 2
        self.from_latent.build((b, h, w, self.latent_channels * self.latent_categories))
        for layer in (self.block1, self.block2, self.up1):
            layer.build((b, h, w, self.width))
        self.up2.build((b, scaled(h, 2), scaled(w, 2), self.width))
        self.conv_out1.build((b, scaled(h, 4), scaled(w, 4), half))
        self.conv_out2.build((b, scaled(h, 4), scaled(w, 4), half))

    def call(self, z, training=False):
        shape = tf.shape(z)
        flat = tf.reshape(z, tf.concat([shape[:3], [-1]], axis=0))
        y = self.from_latent(flat)
        y = self.block2(self.block1(y, training=training), training=training)
        y = tf.nn.relu(self.up1(y))
        y = tf.nn.relu(self.up2(y))
        y = tf.nn.relu(self.conv_out1(y))
        return self.conv_out2(y)

    def get_config(self):
        return {**super().get_config(), "width": self.width,
                "latent_channels": self.latent_channels,
                "latent_categories": self.latent_categories,
                "output_channels": self.output_channels}


@keras.saving.register_keras_serializable(package=tfps_layers.PACKAGE)
class DiscreteAutoencoder(keras.Model):
    """Encoder Q, straight-through argmax quantisation and decoder G (module docstring).

    Args:
      image_shape: `(H, W, C)` of the data; H and W divisible by 4.
      num_levels: L, the number of data values (256 for 8-bit data); x in [0, L) is normalised
        to 2 x / (L - 1) - 1 in [-1, 1].
      width: F, channels of the full-width layers (paper: 512).
      latent_channels: c (paper: 4).
      latent_categories: K (paper: 128).

    Call: `x_hat, z, logits = model(x)` with x int `[B, H, W, C]` -> x_hat float32 `[B, H, W, C]`
    (normalised scale), z one-hot float32 `[B, h, w, c, K]`, logits `[B, h, w, c, K]`.
    """

    def __init__(self, image_shape, num_levels, width=512, latent_channels=4,
                 latent_categories=128, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (height, width, channels), got {image_shape}")
        if image_shape[0] % DOWNSAMPLING or image_shape[1] % DOWNSAMPLING:
            raise ValueError(f"image height and width must be divisible by {DOWNSAMPLING} (two "
                             f"stride-2 convolutions), got {image_shape}")
        if int(num_levels) < 2 or int(latent_categories) < 2 or int(latent_channels) < 1:
            raise ValueError(f"need num_levels >= 2, latent_categories >= 2 and latent_channels "
                             f">= 1, got {num_levels}, {latent_categories}, {latent_channels}")
        self.image_shape = image_shape
        self.num_levels = int(num_levels)
        self.width = _check_width(width)
        self.latent_channels = int(latent_channels)
        self.latent_categories = int(latent_categories)
        self.encoder = Encoder(self.width, self.latent_channels, self.latent_categories,
                               name="encoder")
        self.decoder = Decoder(self.width, self.latent_channels, self.latent_categories,
                               image_shape[2], name="decoder")
        self.build((None,) + image_shape)

    @property
    def latent_shape(self):
        """`(h, w, c)` = `(H / 4, W / 4, latent_channels)`: the ARM's image shape."""
        h, w, _ = self.image_shape
        return (h // DOWNSAMPLING, w // DOWNSAMPLING, self.latent_channels)

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((input_shape[0],) + self.latent_shape + (self.latent_categories,))
        self.built = True

    def normalise(self, x):
        """int `[B, H, W, C]` in [0, L) -> float32 in [-1, 1]: 2 x / (L - 1) - 1."""
        return tf.cast(x, tf.float32) * (2.0 / (self.num_levels - 1)) - 1.0

    def to_levels(self, images):
        """float `[B, H, W, C]` (normalised scale) -> int32 data values in [0, L), rounded."""
        levels = tf.round((tf.cast(images, tf.float32) + 1.0) * (0.5 * (self.num_levels - 1)))
        return tf.cast(tf.clip_by_value(levels, 0.0, self.num_levels - 1.0), tf.int32)

    def encode(self, x, training=False):
        """Q(x): int images `[B, H, W, C]` -> int32 latents `[B, h, w, c]` in [0, K)."""
        logits = self.encoder(self.normalise(x), training=training)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def decode(self, z, training=False):
        """G(z): int32 latents `[B, h, w, c]` or one-hot `[B, h, w, c, K]` -> float32 images."""
        z = tf.convert_to_tensor(z)
        if z.dtype.is_integer:
            z = tf.one_hot(z, self.latent_categories, dtype=tf.float32)
        return self.decoder(z, training=training)

    def call(self, x, training=False):
        logits = self.encoder(self.normalise(x), training=training)
        z = straight_through_one_hot(logits)
        return self.decoder(z, training=training), z, logits

    def get_config(self):
        return {**super().get_config(), **self.model_config()}

    def model_config(self):
        """The constructor arguments as plain JSON-able values (written next to checkpoints)."""
        return {"image_shape": list(self.image_shape), "num_levels": self.num_levels,
                "width": self.width, "latent_channels": self.latent_channels,
                "latent_categories": self.latent_categories}


def build_autoencoder(config):
    """DiscreteAutoencoder from a `model_config()` dict."""
    return DiscreteAutoencoder(**config)


# ----------------------------------------------------------------------------- objective


def rate(prior, z, image_dims, training=False):
    """-log P(z) in nats per image dimension, per example: `[B]`.

    `prior` maps one-hot z `[B, h, w, c, K]` to `(logits [B, h, w, c, K], h)` (a
    `tfps.pixelcnn.PixelCNN` accepts one-hot input); the gradient flows into z, hence through the
    straight-through estimator into the encoder, and into the prior's weights.
    """
    logits, _ = prior(z, training=training)
    log_p = tf.reduce_sum(z * tf.nn.log_softmax(tf.cast(logits, tf.float32)), axis=[1, 2, 3, 4])
    return -log_p / float(image_dims)


def autoencoder_loss(model, x, prior=None, beta=BETA, training=True):
    """Eq. 11: MSE(x, G(z)) + beta * rate(z), z = Q(x); the rate only when `prior` is given.

    x: int `[B, H, W, C]` in [0, L); the MSE is on the [-1, 1] scale, averaged over all B * H * W * C
    values; the rate is -log P(z) / (H * W * C) averaged over the batch (`rate`).
    Returns `(total, {"mse": ..., ["rate": ...]})`.
    """
    x_hat, z, _ = model(x, training=training)
    mse = tf.reduce_mean(tf.square(x_hat - model.normalise(x)))
    values = {"mse": mse}
    total = mse
    if prior is not None:
        values["rate"] = tf.reduce_mean(rate(prior, z, math.prod(model.image_shape), training))
        total = total + beta * values["rate"]
    return total, values


# ----------------------------------------------------------------------------- training config


def _field(default, help_text):
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass
class AutoencoderConfig(training.DictConfig):
    """Everything that defines an autoencoder run (`launch/train_autoencoder.py` flags).

    Defaults are the paper's (Appendix A.3: width 512, 4 x 8 x 8 latent with 128 categories,
    50000 iterations; optimisation as Table 4), except the dataset: the embedded `digits32`.
    Weight decay is PyTorch-Adam style, as for the ARM (`tfps.training.TrainConfig`).
    """
    dataset: str = _field("digits32", "Dataset name (paper: cifar10, svhn_cropped, "
                                      "imagenet_resized/32x32); H and W divisible by 4.")
    bits: int | None = _field(None, "Bit depth to quantise the data to (None: the dataset's own).")
    data_dir: str | None = _field(None, "Directory for downloaded datasets (None: default).")
    width: int = _field(512, "Width F of the encoder and decoder (paper: 512); half-width "
                             "layers have F / 2.")
    latent_channels: int = _field(4, "Latent channels c (paper: 4).")
    latent_categories: int = _field(128, "Categories K per latent variable (paper: 128).")
    batch_size: int = _field(64, "Training batch size (paper: 64).")
    steps: int = _field(50000, "Total optimisation steps, counted across resumes (paper: 50000).")
    learning_rate: float = _field(2e-4, "Initial Adam learning rate (paper: 2e-4).")
    lr_decay: float = _field(0.999995, "Learning rate decay factor applied every step.")
    weight_decay: float = _field(1e-6, "PyTorch-Adam style L2 weight decay (paper: 1e-6).")
    seed: int = _field(0, "Seed for weight initialisation and data shuffling.")
    checkpoint_every: int = _field(1000, "Save a checkpoint every this many steps (and at the end).")
    eval_every: int = _field(1000, "Compute validation MSE every this many steps.")
    log_every: int = _field(100, "Log train MSE, steps/s and ETA every this many steps.")
    keep_checkpoints: int = _field(3, "Number of most recent checkpoints to keep.")
    eval_batches: int | None = _field(50, "Batches of the validation split used for validation "
                                             "MSE (None: the whole split).")

    def validate(self):
        """Raises ValueError naming the first invalid field. Returns self."""
        for field in dataclasses.fields(self):
            check_field(field.name, getattr(self, field.name))
        info = tfps_data.dataset_info(self.dataset, self.bits)
        if info.image_shape[0] % DOWNSAMPLING or info.image_shape[1] % DOWNSAMPLING:
            raise ValueError(f"dataset {self.dataset!r} has images {info.image_shape}; the "
                             f"autoencoder needs height and width divisible by {DOWNSAMPLING}")
        return self



_RANGES = {
    "width": (lambda v: v >= 2 and v % 2 == 0, "an even number >= 2"),
    "latent_channels": (lambda v: v >= 1, ">= 1"),
    "latent_categories": (lambda v: v >= 2, ">= 2"),
}


def check_field(name, value):
    """Raises ValueError if `value` is not valid for AutoencoderConfig field `name` on its own."""
    if name in _RANGES:
        predicate, requirement = _RANGES[name]
        if not predicate(value):
            raise ValueError(f"{name} must be {requirement}, got {value!r}")
    else:
        training.check_field(name, value)  # the fields shared with TrainConfig


# ----------------------------------------------------------------------------- evaluation


def make_mse_fn(model):
    """A traced `x [B, H, W, C] -> (sum over images of the per-image MSE, latents, B)`."""
    @tf.function(reduce_retracing=True)
    def mse_fn(x):
        logits = model.encoder(model.normalise(x), training=False)
        z = tf.argmax(logits, axis=-1, output_type=tf.int32)
        x_hat = model.decode(z, training=False)
        per_image = tf.reduce_mean(tf.square(x_hat - model.normalise(x)), axis=[1, 2, 3])
        return tf.reduce_sum(per_image), z, tf.shape(x)[0]
    return mse_fn


def evaluate(model, dataset, batch_size, max_batches=None, mse_fn=None):
    """Reconstruction MSE (inference mode, [-1, 1] scale) and latent usage on `dataset`.

    `dataset`: single int images `[H, W, C]` (tf.data.Dataset or `[N, H, W, C]` array). Returns
    `{"mse": mean over images, "categories_used": fraction of the c * K (channel, category) pairs
    that some latent takes}`.
    """
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    batches = dataset.batch(int(batch_size))
    if max_batches is not None:
        batches = batches.take(int(max_batches))
    mse_fn = mse_fn or make_mse_fn(model)
    total, count = 0.0, 0
    used = np.zeros((model.latent_channels, model.latent_categories), bool)
    for x in batches.prefetch(tf.data.AUTOTUNE):
        mse_sum, z, n = mse_fn(tf.cast(x, tf.int32))
        total += float(mse_sum)
        count += int(n)
        z = z.numpy().reshape(-1, model.latent_channels)
        for channel in range(model.latent_channels):
            used[channel, np.unique(z[:, channel])] = True
    if count == 0:
        raise ValueError("evaluate got an empty dataset")
    return {"mse": total / count, "categories_used": float(used.mean())}


# ----------------------------------------------------------------------------- training


def run_config(config, model, info):
    """The dict written to an autoencoder run's config.json."""
    return {"format": AUTOENCODER_FORMAT, "train": config.to_dict(), "model": model.model_config(),
            "dataset": training._dataset_description(info)}


def _log_progress(progress, step, steps, learning_rate, writer):
    means, rate_ = progress.flush(step)
    for name, value in dict(means, steps_per_sec=rate_, learning_rate=learning_rate).items():
        training.write_scalar(writer, name, value, step)
    writer.flush()
    logging.info("step %d/%d  %s  %.1f steps/s  lr %.3g  ETA %s", step, steps,
                 "  ".join(f"{k} {v:.5f}" for k, v in means.items()), rate_, learning_rate,
                 training._format_eta((steps - step) / max(rate_, 1e-9)))
    return means["mse"]


def train_autoencoder(config, logdir):
    """Trains (or resumes) the discrete autoencoder on MSE (the paper's first stage).

    Resumable like `tfps.training.train`: checkpoints in `logdir/checkpoints`, a refusal
    (ConfigConflictError) to mix runs of different models or data, TensorBoard scalars, and
    `logdir/metrics.json` with `step`, `test_mse`, `validation_mse`, `train_mse`,
    `test_categories_used`, `steps_per_sec`, `train_seconds`, `checkpoint`. Returns the metrics.
    """
    config.validate()
    os.makedirs(logdir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    info = tfps_data.dataset_info(config.dataset, config.bits)
    model = DiscreteAutoencoder(info.image_shape, info.num_categories, config.width,
                                config.latent_channels, config.latent_categories)
    new_run_config = run_config(config, model, info)
    config_path = os.path.join(logdir, training.CONFIG_FILE)
    if os.path.exists(config_path):
        training.check_compatible(training.read_config(logdir), new_run_config, config_path)
    training._write_json(config_path, new_run_config)

    optimizer = training.make_optimizer(config)
    variables = list(model.trainable_variables)
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(logdir, training.CHECKPOINT_DIR),
                                         max_to_keep=config.keep_checkpoints)
    if manager.latest_checkpoint:
        training._restore(checkpoint, manager.latest_checkpoint)
        logging.info("Resuming %s from step %d", manager.latest_checkpoint, int(step))
    start_step = int(step)

    writers = {name: tf.summary.create_file_writer(os.path.join(logdir, name))
               for name in ("train", "validation", "test")}
    load = lambda split: tfps_data.load(config.dataset, split, bits=config.bits,
                                        data_dir=config.data_dir)[0]
    val_ds = load("validation")
    weight_decay = float(config.weight_decay)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            total, values = autoencoder_loss(model, x, training=True)
        grads = tape.gradient(total, variables)
        if weight_decay > 0.0:
            grads = [g + weight_decay * tf.convert_to_tensor(v) for g, v in zip(grads, variables)]
        optimizer.apply_gradients(zip(grads, variables))
        step.assign_add(1)
        return values

    mse_fn = make_mse_fn(model)

    def validate(at_step):
        result = evaluate(model, val_ds, config.batch_size, config.eval_batches, mse_fn)
        for name, value in result.items():
            training.write_scalar(writers["validation"], name, value, at_step)
        writers["validation"].flush()
        logging.info("step %d/%d  validation mse %.5f  categories used %.3f", at_step,
                     config.steps, result["mse"], result["categories_used"])
        return result

    progress = training._Progress(start_step)
    train_mse = None
    if start_step < config.steps:
        train_ds, _ = training._train_pipeline(config, start_step)
        logging.info("Training the autoencoder on %s for steps %d..%d: %s", info.name,
                     start_step, config.steps, json.dumps(new_run_config["model"]))
        train_mse = training.run_steps(
            train_ds, config, step, train_step, progress, optimizer,
            lambda *args: _log_progress(*args, writers["train"]), validate, manager)

    final_step = int(step)
    if training._saved_step(manager) != final_step:
        manager.save(checkpoint_number=final_step)
    validation = validate(final_step)
    test = evaluate(model, load("test"), config.batch_size, None, mse_fn)
    for name, value in test.items():
        training.write_scalar(writers["test"], name, value, final_step)
    for writer in writers.values():
        writer.flush()
        writer.close()
    metrics = {
        "step": final_step, "start_step": start_step, "test_mse": test["mse"],
        "validation_mse": validation["mse"], "train_mse": train_mse,
        "test_categories_used": test["categories_used"],
        "steps_per_sec": (progress.train_steps / progress.train_time
                          if progress.train_steps else None),
        "train_seconds": progress.train_time, "dataset": info.name,
        "latent_shape": list(model.latent_shape), "checkpoint": manager.latest_checkpoint,
    }
    training._write_json(os.path.join(logdir, training.METRICS_FILE), metrics)
    logging.info("step %d  test mse %.5f  (categories used %.3f)", final_step, test["mse"],
                 test["categories_used"])
    return metrics


# ----------------------------------------------------------------------------- loading


def load_autoencoder(logdir_or_checkpoint):
    """Rebuilds a trained autoencoder: `(model, config)`, like `tfps.training.load_trained`.

    `config` is the run's config.json plus `checkpoint` (the restored prefix), `step` and
    `logdir`. Raises CheckpointNotFoundError / CheckpointError (naming the path), also when the
    run is not an autoencoder run.
    """
    model, config, logdir, prefix = _built_autoencoder(logdir_or_checkpoint)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    training._restore(tf.train.Checkpoint(step=step, model=model), prefix, partial=True)
    return model, dict(config, checkpoint=prefix, step=int(step), logdir=logdir)


def _built_autoencoder(logdir_or_checkpoint):
    """`(model, config.json, logdir, checkpoint prefix)` of an autoencoder run, the model built
    from the config but its weights not restored. Raises like `load_autoencoder`."""
    logdir, prefix = training._resolve_checkpoint(logdir_or_checkpoint)
    config = training.read_config(logdir)
    path = os.path.join(logdir, training.CONFIG_FILE)
    if config.get("format") != AUTOENCODER_FORMAT:
        raise training.CheckpointError(
            f"{path}: not an autoencoder run (format {config.get('format')!r}, expected "
            f"{AUTOENCODER_FORMAT!r}); train one with launch/train_autoencoder.py")
    try:
        model = build_autoencoder(config["model"])
    except (TypeError, ValueError) as e:
        raise training.CheckpointError(f"{path}: cannot build the autoencoder ({e})") from e
    return model, config, logdir, prefix


# ----------------------------------------------------------------------------- latents for the ARM


def latent_dtype(num_categories):
    """The smallest numpy integer type for latents in [0, K): uint8 up to K = 256, else int32."""
    return np.uint8 if num_categories <= 256 else np.int32


def encode_images(model, images, batch_size=256, dtype=np.int32):
    """Q(x) of a dataset of single int images (or an `[N, H, W, C]` array): `[N, h, w, c]` of
    `dtype` (a smaller type than int32 keeps the latents of large datasets small in memory)."""
    if isinstance(images, np.ndarray):
        images = tf.data.Dataset.from_tensor_slices(images)
    encode = tf.function(lambda x: model.encode(tf.cast(x, tf.int32), training=False),
                         reduce_retracing=True)
    parts = [encode(x).numpy().astype(dtype)
             for x in images.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)]
    if not parts:
        return np.zeros((0,) + model.latent_shape, dtype)
    return np.concatenate(parts)


def cached_latents(model, ae_config, split, data_dir=None):
    """The frozen encoder's latents of `split` of the autoencoder's dataset: `[N, h, w, c]` of
    `latent_dtype(K)` (uint8 for K <= 256: 322 MB for ImageNet32's train split).

    Computed once per checkpoint and cached as `<autoencoder run>/latents/<ckpt>-<split>.npy`
    (an unwritable run directory only costs the recomputation).
    """
    name = os.path.basename(ae_config["checkpoint"])
    path = os.path.join(ae_config["logdir"], LATENTS_DIR, f"{name}-{split}.npy")
    if os.path.isfile(path):
        return np.load(path)
    train = ae_config["train"]
    images, _ = tfps_data.load(train["dataset"], split, bits=train["bits"],
                               data_dir=data_dir or train.get("data_dir"))
    latents = encode_images(model, images, dtype=latent_dtype(model.latent_categories))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npy"
        np.save(tmp, latents)
        os.replace(tmp, path)
    except OSError as e:
        logging.warning("could not cache latents in %s (%s); continuing without", path, e)
    return latents


def autoencoder_data(logdir_or_checkpoint):
    """`{"dataset", "bits"}` of an autoencoder run (read from its config.json, no model built)."""
    logdir, _ = training._resolve_checkpoint(logdir_or_checkpoint)
    train = training.read_config(logdir)["train"]
    return {"dataset": train["dataset"], "bits": train["bits"]}


def latent_info(logdir_or_checkpoint):
    """The `DatasetInfo` of an autoencoder run's latents: what an ARM on them models (shape
    `(h, w, c)`, K = latent categories), from its config (no weights are read). Raises like
    `load_autoencoder`."""
    model, config, _, _ = _built_autoencoder(logdir_or_checkpoint)
    return _latents_info(model, config)


def _latents_info(model, ae_config):
    return tfps_data.DatasetInfo(f"{ae_config['train']['dataset']}:latents", model.latent_shape,
                                 model.latent_categories, None)


def latent_source(config):
    """The ARM's data when `config.latents_from` names an autoencoder run (`tfps.training`).

    Returns `(info, load, description)`: `info` a `DatasetInfo` of the latents (image_shape
    `(h, w, c)`, K = latent categories), `load(split)` a dataset of single integer latents
    `[h, w, c]` (uint8 for K <= 256; the ARM's pipelines cast to int32), and `description` the keys added to config.json's `dataset` section: the
    autoencoder's run directory and exact checkpoint (so that samples can be decoded), the image
    data it encodes, and `dimension_reduction` = (H * W * C) / (h * w * c).
    Raises ValueError when `config.dataset` / `config.bits` are not the autoencoder's.
    """
    model, ae_config = load_autoencoder(config.latents_from)
    ae_train = ae_config["train"]
    if (config.dataset, config.bits) != (ae_train["dataset"], ae_train["bits"]):
        raise ValueError(
            f"the ARM models the latents of the autoencoder's data, dataset={ae_train['dataset']!r} "
            f"bits={ae_train['bits']!r} (from {ae_config['logdir']}), but dataset="
            f"{config.dataset!r} bits={config.bits!r} was asked for; pass the autoencoder's "
            f"--dataset and --bits (or leave them out)")
    info = _latents_info(model, ae_config)
    load = lambda split: tf.data.Dataset.from_tensor_slices(
        cached_latents(model, ae_config, split, config.data_dir))
    description = {
        "autoencoder": os.path.abspath(ae_config["logdir"]),
        "autoencoder_checkpoint": os.path.abspath(ae_config["checkpoint"]),
        "images": ae_config["dataset"],
        "dimension_reduction": math.prod(model.image_shape) / math.prod(model.latent_shape),
    }
    return info, load, description


def latent_description(config):
    """The `dataset` section describing latents in a run config (an ARM run's config.json, the
    dict `tfps.training.load_trained` returns, or an export's metadata); None for image data."""
    if not isinstance(config, dict):
        return None
    for dataset in (config.get("dataset"), (config.get("training") or {}).get("dataset")):
        if isinstance(dataset, dict) and dataset.get("autoencoder_checkpoint"):
            return dataset
    return None


def is_latent(config):
    """True if `config` describes an ARM trained on autoencoder latents."""
    return latent_description(config) is not None


# ----------------------------------------------------------------------------- decoding


class LatentDecoder:
    """G for the samples of a latent ARM: latents int32 `[B, h, w, c]` -> float32 `[B, H, W, C]`.

    Images are in [-1, 1] (the decoder's output clipped to the data range); `to_levels` maps them
    back to data values in [0, L). `function` is a `tf.function` with a fixed input signature over
    the decoder in inference mode (deterministic), for exports: calling it from a traced function
    captures the decoder's variables.
    """

    def __init__(self, autoencoder, config=None):
        self.autoencoder = autoencoder
        self.config = config or {}
        self.latent_shape = autoencoder.latent_shape
        self.latent_categories = autoencoder.latent_categories
        self.image_shape = autoencoder.image_shape
        self.num_levels = autoencoder.num_levels
        self.function = tf.function(
            self._decode, autograph=False,
            input_signature=[tf.TensorSpec((None,) + self.latent_shape, tf.int32)])

    def _decode(self, latents):
        images = self.autoencoder.decode(latents, training=False)
        return tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0)

    def decode(self, latents):
        """Checked decode of int latents `[B, h, w, c]` in [0, K) -> float32 `[B, H, W, C]`."""
        latents = pixelcnn.validate_images(latents, self.latent_shape, self.latent_categories,
                                           "latents")
        return self.function(latents)

    def to_levels(self, images):
        """float images in [-1, 1] -> int32 data values in [0, L)."""
        return self.autoencoder.to_levels(images)


def load_decoder(config):
    """The decoder G of the autoencoder a latent ARM was trained on.

    `config`: an ARM run's config (`tfps.training.load_trained(...)[1]` or `read_config`) or an
    export's metadata; its `dataset` section names the autoencoder checkpoint (`latent_source`).
    Raises ValueError if the config is not of a latent ARM; CheckpointError / NotFound from
    `load_autoencoder`.
    """
    described = latent_description(config)
    if described is None:
        raise ValueError("not an ARM trained on autoencoder latents (its config names no "
                         "autoencoder_checkpoint)")
    model, ae_config = load_autoencoder(described["autoencoder_checkpoint"])
    if list(model.latent_shape) != list(described.get("image_shape", model.latent_shape)):
        raise training.CheckpointError(
            f"{described['autoencoder_checkpoint']}: latent shape {model.latent_shape} does not "
            f"match the ARM's {described.get('image_shape')}")
    return LatentDecoder(model, ae_config)


def decoder_for(config):
    """`load_decoder(config)` for a latent ARM, None for an ARM on image data."""
    return load_decoder(config) if is_latent(config) else None


def latent_picture(latents, num_categories):
    """int latents `[B, h, w, c]` -> uint8 RGB `[B, h, c * w, 3]`: the c channels side by side in
    grey (for PNG grids; `tfps.summaries.to_rgb` draws only 1 or 3 channels)."""
    latents = np.asarray(latents)
    b, h, w, c = latents.shape
    side_by_side = latents.transpose(0, 1, 3, 2).reshape(b, h, c * w, 1)
    return summaries.to_rgb(side_by_side, num_categories)


def write_decoded(decoder, latents, output_dir, method):
    """Decodes `latents` and writes `images_<method>.npy` (float32 `[N, H, W, C]` in [-1, 1]) and
    `images_<method>.png` (a grid). Returns `(images, npy_path, png_path)`."""
    images = decoder.decode(latents).numpy()
    npy_path = os.path.join(output_dir, f"images_{method}.npy")
    png_path = os.path.join(output_dir, f"images_{method}.png")
    np.save(npy_path, images.astype(np.float32))
    rgb = summaries.to_rgb(decoder.to_levels(images).numpy(), decoder.num_levels)
    summaries.write_png(png_path, summaries.grid(rgb, scale=summaries.auto_scale(rgb.shape[1])))
    return images, npy_path, png_path


def time_decode(decoder, batch_sizes=(1, 32), seeds=range(10)):
    """Seconds to decode a batch of latents (excluding tracing), per batch size:
    `{batch_size: (mean, Bessel-corrected std)}` over seeds; latents drawn uniformly."""
    results = {}
    for batch_size in batch_sizes:
        shape = (int(batch_size),) + decoder.latent_shape
        draw = lambda seed: tf.random.stateless_uniform(
            shape, [0, seed], maxval=decoder.latent_categories, dtype=tf.int32)
        decoder.function(draw(10_000)).numpy()  # warm-up (tracing)
        seconds = []
        for seed in seeds:
            latents = draw(seed)
            start = time.perf_counter()
            decoder.function(latents).numpy()
            seconds.append(time.perf_counter() - start)
        values = np.asarray(seconds)
        results[int(batch_size)] = (float(values.mean()),
                                    float(values.std(ddof=1)) if values.size > 1 else 0.0)
    return results


def decode_time_line(decode_times):
    """One markdown line for `time_decode`'s result: the decode time per batch size."""
    cells = ", ".join(f"B={b}: {mean:.4f} ± {std:.4f} s" for b, (mean, std) in
                      sorted(decode_times.items()))
    return f"Decoding a batch of sampled latents to images (not included above): {cells}."
