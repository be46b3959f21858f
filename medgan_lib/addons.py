"""Every use of TensorFlow Addons in the project lives here.

The paper built its generator with TFA's ``GroupNormalization`` and ``gelu``
("experimental functions of TensorFlow Addons"). TFA is end-of-life and only imports
with TF < 2.16, so it is confined to this module. ``tfa.activations.gelu`` defaults to
the tanh approximation (``approximate=True``) while ``keras.activations.gelu`` defaults
to the exact erf form; the flag is pinned here so the choice is explicit.
"""
from __future__ import annotations

import warnings

import tensorflow as tf

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # TFA announces its end of life on import
    import tensorflow_addons as tfa

# tfa's gelu warns on every call that core TF has its own (with another default); we know.
warnings.filterwarnings("ignore", message="gelu activation has been migrated", category=DeprecationWarning)

GELU_APPROXIMATE = True  # TFA's default, hence what the paper used


def group_normalization(groups: int, name: str | None = None) -> tf.keras.layers.Layer:
    """TFA GroupNormalization over the channel axis (gamma and beta per channel)."""
    return tfa.layers.GroupNormalization(groups=groups, axis=-1, name=name)


def gelu(x: tf.Tensor) -> tf.Tensor:
    """TFA GELU with the approximation flag pinned."""
    return tfa.activations.gelu(x, approximate=GELU_APPROXIMATE)


def gelu_layer(name: str | None = None) -> tf.keras.layers.Layer:
    """GELU as a Keras ``Activation`` layer (the "Activation GELU" of paper Figure 3)."""
    return tf.keras.layers.Activation(gelu, name=name)
