"""keras_gen: train, evaluate, explore and serve generative image models with Keras 3."""

import os

# oneDNN is off by default on AMD CPUs; turning it on made tf.function training steps 2.1-2.5x
# faster on our reference machine (../shared/STACK_NOTES.md). It only takes effect if set before
# TensorFlow is first imported, and a user's own setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's C++ INFO lines (CPU feature notices) say nothing a user can act on; warnings stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"
