"""The paper's training algorithm (section 2.1) as a Keras model with its own ``train_step``.

One step, as in the paper: (1) update the discriminator to decrease the binary cross-entropy
of real images labelled 1 and generated images labelled 0 (eq. 1-2); (2) update the generator
so that the discriminator labels its images "real". The generator's loss is the non-saturating
``-log D(G(z))`` by default; the paper's printed eq. 3, the saturating ``log(1 - D(G(z)))``, is
``g_loss="saturating"``.

The discriminator returns logits and the sigmoid lives inside the cross-entropy
(``from_logits``): identical to the paper's sigmoid output followed by BCE, without its
overflow. Two details matter for the paper's head, whose BatchNormalization standardises
whatever batch it sees in training mode:

* the D step feeds real and generated images as ONE concatenated batch (two separate batches
  would both come out with mean 0 and the linear head could not tell them apart);
* the G step runs D in inference mode (moving statistics), as a frozen Keras model does
  (``g_step_d_batch="inference"``), or, with ``g_step_d_batch="joint"``, in training mode on
  real + generated images exactly as in the D step, the loss taken on the generated half: then
  G follows the very function D was trained as, which a fully trainable backbone needs (its
  BatchNormalization moving statistics lag far behind its training-mode behaviour).

All randomness of a step comes from a checkpointed ``tf.random.Generator``, so a resumed run
draws exactly the noise the uninterrupted one would have.

Speed (issue 4), none of which changes what a step computes in expectation:

* feature cache: with a frozen backbone (transfer mode, always in inference mode) a real image's
  features never change, so :meth:`GAN.training_inputs` computes them once per run and the data
  pipeline feeds those features instead of the images; the head's BatchNormalization still
  sees real and generated features as ONE concatenated batch. Off with
  ``cache_real_features=False``; a trainable backbone never caches.
* ``update_order="simultaneous"``: one generated batch and one D forward serve both updates
  (a persistent tape, two gradients taken at the same weights, then both applied), instead of
  the paper's strict alternation (``"alternating"``: update D, then generate a fresh batch and
  update G against the updated D). Simultaneous gradient steps are the common TensorFlow DCGAN
  form; per step it also draws one latent batch and one dropout mask instead of two and updates
  BatchNormalization moving statistics once instead of twice.
* ``mixed_precision``: models built under Keras' ``mixed_bfloat16`` policy (see
  :func:`precision_policy`): bf16 compute, float32 variables; the generator's tanh output, the
  discriminator head (so the logits) and the losses stay float32.
* ``fused_adam``: Adam's update as one fused kernel per variable (:class:`FusedAdam`), the same
  formula as Keras' Adam.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow as tf

from .config import Config
from .discriminator import split_discriminator

log = logging.getLogger("medgan")


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor, real_label: float = 1.0) -> tf.Tensor:
    """BCE of real images against ``real_label`` (1, or less for one-sided smoothing) and fakes against 0."""
    logits = tf.concat([real_logits, fake_logits], axis=0)
    labels = tf.concat([tf.fill(tf.shape(real_logits), real_label), tf.zeros_like(fake_logits)], axis=0)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def non_saturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """``-log D(G(z))``: BCE of the generated images against the label "real"."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits))


def saturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """``log(1 - D(G(z)))``, the paper's eq. 3 as printed (minimised by G)."""
    return -tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits))


GENERATOR_LOSSES = {"non_saturating": non_saturating_generator_loss, "saturating": saturating_generator_loss}


def real_accuracy(real_logits: tf.Tensor) -> tf.Tensor:
    """Share of real images the discriminator calls real (D(x) > 0.5)."""
    return tf.reduce_mean(tf.cast(real_logits > 0.0, tf.float32))


def fake_accuracy(fake_logits: tf.Tensor) -> tf.Tensor:
    """Share of generated images the discriminator calls generated (D(G(z)) < 0.5)."""
    return tf.reduce_mean(tf.cast(fake_logits < 0.0, tf.float32))


def cpu_has_native_bf16() -> bool:
    """Whether the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16); Linux only."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Build the models inside this block under ``mixed_bfloat16`` (``mixed``) or ``float32``."""
    if mixed and not cpu_has_native_bf16():
        log.warning("mixed_precision: this CPU has no native bf16 instructions; bf16 may be slower than float32")
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed else "float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def frozen_split(discriminator: tf.keras.Model) -> tuple[tf.keras.Model, tf.keras.Model] | None:
    """(features, head) of a project discriminator whose backbone has no trainable variables, else None."""
    if "head" not in {layer.name for layer in discriminator.layers}:
        return None
    features, head = split_discriminator(discriminator)
    return None if features.trainable_variables else (features, head)


Gradients = list[tf.Tensor]


class GAN(tf.keras.Model):
    """Generator and discriminator, one ``fit`` batch per step, updated alternately or simultaneously."""

    METRICS = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")

    def __init__(self, generator: tf.keras.Model, discriminator: tf.keras.Model, config: Config) -> None:
        super().__init__(name="gan")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = config.latent_dim
        self.real_label = config.real_label
        self.generator_loss = GENERATOR_LOSSES[config.g_loss]
        self.g_step_joint = config.g_step_d_batch == "joint"
        self.simultaneous = config.update_order == "simultaneous"
        split = frozen_split(discriminator) if config.cache_real_features else None
        self.feature_cache = split is not None
        self.features, self.head = split or (None, None)
        self.noise = tf.random.Generator.from_seed(config.seed)
        self.trackers = {name: tf.keras.metrics.Mean(name=name) for name in self.METRICS}

    @property
    def metrics(self) -> list[tf.keras.metrics.Metric]:
        return list(self.trackers.values())

    def compile(self, g_optimizer: tf.keras.optimizers.Optimizer, d_optimizer: tf.keras.optimizers.Optimizer) -> None:
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def call(self, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.generator(z, training=training)

    def sample_latent(self, n: tf.Tensor) -> tf.Tensor:
        return self.noise.normal((n, self.latent_dim))

    def training_inputs(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """What ``train_step`` is fed for the real batch: the images, or with the feature cache
        their frozen-backbone features (float32, computed here once)."""
        if not self.feature_cache:
            return images
        return np.asarray(self.features.predict(images, batch_size=batch_size, verbose=0), np.float32)

    def _generate(self, n: tf.Tensor) -> tf.Tensor:
        return self.generator(self.sample_latent(n), training=True)

    def _joint_logits(self, real: tf.Tensor, fake: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
        """D in training mode on ONE batch [real; fake]: (real logits, fake logits, fake features).

        With the feature cache ``real`` holds the real images' features (images are accepted
        too), only the fakes go through the frozen backbone, and their features are returned for
        reuse (else None).
        """
        n = tf.shape(real)[0]
        if self.feature_cache:
            real_features = real if real.shape.rank == 2 else self.features(real, training=False)
            fake_features = tf.cast(self.features(fake, training=False), real_features.dtype)
            logits = self.head(tf.concat([real_features, fake_features], axis=0), training=True)
        else:
            fake_features = None
            logits = self.discriminator(tf.concat([real, fake], axis=0), training=True)
        return logits[:n], logits[n:], fake_features

    def _inference_logits(self, fake: tf.Tensor, fake_features: tf.Tensor | None = None) -> tf.Tensor:
        """D in inference mode on generated images (from their frozen-backbone features if given)."""
        if fake_features is None:
            return self.discriminator(fake, training=False)
        return self.head(fake_features, training=False)

    def _d_results(self, loss: tf.Tensor, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> dict[str, tf.Tensor]:
        return {
            "d_loss": loss,
            "d_real_accuracy": real_accuracy(real_logits),
            "d_fake_accuracy": fake_accuracy(fake_logits),
        }

    def discriminator_gradients(self, real: tf.Tensor) -> tuple[Gradients, dict[str, tf.Tensor]]:
        """Alternating D step: gradients of the D loss on one concatenated real + generated batch."""
        fake = self._generate(tf.shape(real)[0])
        with tf.GradientTape() as tape:
            real_logits, fake_logits, _ = self._joint_logits(real, fake)
            loss = discriminator_loss(real_logits, fake_logits, self.real_label)
        grads = tape.gradient(loss, self.discriminator.trainable_variables)
        return grads, self._d_results(loss, real_logits, fake_logits)

    def generator_gradients(self, real: tf.Tensor) -> tuple[Gradients, dict[str, tf.Tensor]]:
        """Alternating G step: gradients of the G loss on a freshly generated batch."""
        with tf.GradientTape() as tape:
            fake = self._generate(tf.shape(real)[0])
            if self.g_step_joint:
                fake_logits = self._joint_logits(real, fake)[1]
            else:
                fake_logits = self._inference_logits(fake)
            loss = self.generator_loss(fake_logits)
        return tape.gradient(loss, self.generator.trainable_variables), {"g_loss": loss}

    def simultaneous_gradients(self, real: tf.Tensor) -> tuple[Gradients, Gradients, dict[str, tf.Tensor]]:
        """D and G gradients, both at the current weights, from one generated batch and one D forward."""
        with tf.GradientTape(persistent=True) as tape:
            fake = self._generate(tf.shape(real)[0])
            real_logits, fake_logits, fake_features = self._joint_logits(real, fake)
            d_loss = discriminator_loss(real_logits, fake_logits, self.real_label)
            g_logits = fake_logits if self.g_step_joint else self._inference_logits(fake, fake_features)
            g_loss = self.generator_loss(g_logits)
        d_grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        g_grads = tape.gradient(g_loss, self.generator.trainable_variables)
        del tape
        return d_grads, g_grads, {**self._d_results(d_loss, real_logits, fake_logits), "g_loss": g_loss}

    def _apply(self, optimizer: tf.keras.optimizers.Optimizer, grads: Gradients, model: tf.keras.Model) -> None:
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    def train_step(self, data) -> dict[str, tf.Tensor]:
        real, _, _ = tf.keras.utils.unpack_x_y_sample_weight(data)
        if self.simultaneous:
            d_grads, g_grads, results = self.simultaneous_gradients(real)
            self._apply(self.d_optimizer, d_grads, self.discriminator)
            self._apply(self.g_optimizer, g_grads, self.generator)
        else:
            d_grads, results = self.discriminator_gradients(real)
            self._apply(self.d_optimizer, d_grads, self.discriminator)
            g_grads, g_results = self.generator_gradients(real)
            self._apply(self.g_optimizer, g_grads, self.generator)
            results.update(g_results)
        for name, value in results.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


class FusedAdam(tf.keras.optimizers.Adam):
    """Keras Adam whose dense update runs as TensorFlow's fused ``ResourceApplyAdam`` kernel.

    The same update as Keras (``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``var -= alpha m / (sqrt(v) + epsilon)`` with ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``)
    in one pass over each variable instead of about ten elementwise ops; equal up to float
    rounding, with the same slot variables (checkpoints are interchangeable).
    """

    def update_step(self, gradient: tf.Tensor, variable: tf.Variable) -> None:
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            super().update_step(gradient, variable)
            return
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._index_dict[self._var_key(variable)]
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(self.learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=gradient,
        )


def make_optimizers(config: Config) -> tuple[tf.keras.optimizers.Optimizer, tf.keras.optimizers.Optimizer]:
    """Adam for G and D (the paper names no optimiser; Adam 2e-4, beta_1 0.5 is the DCGAN default)."""
    optimizer = FusedAdam if config.fused_adam else tf.keras.optimizers.Adam

    def adam(learning_rate: float, name: str) -> tf.keras.optimizers.Optimizer:
        return optimizer(learning_rate, beta_1=config.adam_beta_1, beta_2=config.adam_beta_2, name=name)

    return adam(config.g_learning_rate, "g_adam"), adam(config.d_learning_rate, "d_adam")
