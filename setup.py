"""tfps: predictive sampling with forecasting autoregressive models, in TensorFlow/Keras."""

import setuptools

# Pins known to work together on Python 3.11 (see BUILD_NOTES.md).
CORE = [
    "keras==3.15.0",
    "tensorflow-probability==0.25.0",
    "tf-keras==2.21.0",  # TFP refuses to import without it.
    "tensorflow-datasets==4.9.10",
    "importlib_resources",  # tfds 4.9.10 imports it lazily when preparing a dataset.
    "absl-py>=2.1",
    "numpy>=1.26",
    "scikit-learn>=1.4",
    "pillow>=10",
    "scikit-image==0.26.0",  # the photographs of the embedded photos32 set (tfps.data.photos)
    # tf.summary.scalar/image/histogram come from it (TF 2.21 no longer installs it); the launchers'
    # --logdir summaries (tfps.evaluation.summaries) and launch/check_tensorboard.py need it at run
    # time.
    "tensorboard==2.21.0",
    "ml-collections==1.1.0",  # config presets (configs/*.py) and their --config flags
]

setuptools.setup(
    name="tfps",
    version="0.1.0",
    description=(
        "Predictive sampling with forecasting autoregressive models "
        "(Wiggers & Hoogeboom, ICML 2020)"
    ),
    packages=setuptools.find_packages(include=["tfps", "tfps.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=CORE,
    extras_require={
        # CPU TensorFlow is the default; `pip install .[gpu]` takes the CUDA build instead.
        "cpu": ["tensorflow-cpu==2.21.0"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        "test": ["pytest>=8", "pytest-xdist==3.8.0", "ruff==0.17.6"],
    },
)
