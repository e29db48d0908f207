"""keras_gen: train, evaluate, explore and serve generative image models with TensorFlow/Keras."""

import setuptools

# Pinned to the versions the project is developed and tested against (see ../shared/STACK_NOTES.md):
# TensorFlow Probability 0.25 needs tf-keras to import, and TF 2.21 no longer pulls in TensorBoard.
INSTALL_REQUIRES = [
    "tensorflow==2.21.*",
    "tf-keras==2.21.*",
    "tensorflow-probability==0.25.*",
    "tensorflow-datasets==4.9.*",
    "tensorboard>=2.20,<2.22",
    "numpy>=1.26,<3",
    "matplotlib>=3.8,<4",
    # The report's 256-colour figures (matplotlib needs it too).
    "pillow>=10,<14",
    "absl-py>=2.1,<3",
    # tfds imports it when it downloads a dataset but does not declare it.
    "importlib_resources>=6,<7",
    # Reads SVHN's .mat files.
    "scipy>=1.11,<2",
    # The PredictionLog protos of TF Serving's warm-up file, written with every export.
    "tensorflow-serving-api==2.21.*",
]

setuptools.setup(
    name="keras_gen",
    version="0.1.0",
    description="Train, evaluate, explore and serve generative image models (VAE, GAN, WGAN) with Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.13",
    packages=setuptools.find_packages(include=["keras_gen", "keras_gen.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pytest-xdist: the suite in two processes (-n 2), one per core.
        "test": ["pytest>=8,<10", "pytest-timeout>=2.3,<3", "pytest-xdist>=3.5,<4"],
        # TensorBoard's Profile tab, for traces written with --profile_batches.
        "profile": ["tensorboard-plugin-profile>=2.20,<3"],
    },
    entry_points={"console_scripts": ["keras-gen=keras_gen.cli:run"]},
)
