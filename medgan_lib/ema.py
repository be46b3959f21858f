"""Exponential moving average of a model's weights (Karras et al. 2018; Yazici et al. 2019).

After every training step ``average <- decay * average + (1 - decay) * weights`` for every
floating-point weight of the model (trainable ones and BatchNormalization's moving statistics),
starting from a copy of the initial weights; so after ``k`` steps with the model's weights held
at ``w`` the average is ``decay**k * w0 + (1 - decay**k) * w``. Samples drawn from the average
are smoother than those of the last step's weights (the generator's oscillation around the
equilibrium averages out). The average is its own Keras model of the same architecture, so it
is checkpointed, saved and loaded like the generator itself.
"""
from __future__ import annotations

import tensorflow as tf


def averaged_weights(model: tf.keras.Model) -> list[tf.Variable]:
    """The weights an average follows: every floating-point weight, in the model's order."""
    return [w for w in model.weights if w.dtype.is_floating]


class WeightAverage:
    """An exponential moving average of ``model``'s weights held in ``average`` (same architecture)."""

    def __init__(self, model: tf.keras.Model, average: tf.keras.Model, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.model, self.average, self.decay = model, average, decay
        self.pairs = list(zip(averaged_weights(average), averaged_weights(model)))
        if len(self.pairs) != len(averaged_weights(model)) or any(
                a.shape != w.shape for a, w in self.pairs):
            raise ValueError(f"{average.name} does not have the weights of {model.name}")
        self.reset()

    def reset(self) -> None:
        """Start the average at the model's current weights."""
        for average, weight in self.pairs:
            average.assign(weight)

    def update(self) -> None:
        """One step: move every averaged weight ``1 - decay`` of the way to the model's."""
        for average, weight in self.pairs:
            average.assign(self.decay * average + (1.0 - self.decay) * tf.cast(weight, average.dtype))
