"""medgan: a reproducible companion to Laptev, Gerget & Danilov,
"Research of generative adversarial networks for the synthesis of new medical data".

The package keeps TensorFlow's C++ start-up chatter quiet (``TF_CPP_MIN_LOG_LEVEL=2``
unless the user set it) so that notebook outputs stay stable.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
