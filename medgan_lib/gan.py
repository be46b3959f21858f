"""The paper's training algorithm (section 2.1) as a Keras model with its own ``train_step``.

:meth:`GAN.train_step` is the paper's step, top to bottom: (1) update the discriminator to
decrease the binary cross-entropy of real images labelled 1 and generated images labelled 0
(eq. 1-2, :mod:`medgan_lib.losses`); (2) update the generator on fresh noise so that the
discriminator labels its images "real" (eq. 3, or the non-saturating eq. 4, the default).

The discriminator returns logits; the sigmoid lives inside the cross-entropy. Two details matter
for the paper's head, whose BatchNormalization standardises whatever batch it sees in training
mode:

* the D step feeds real and generated images as ONE concatenated batch (two separate batches
  would both come out with mean 0 and the linear head could not tell them apart);
* the G step runs D in inference mode (moving statistics), as a frozen Keras model does
  (``g_step_d_batch="inference"``), or, with ``g_step_d_batch="joint"``, in training mode on
  real + generated images exactly as in the D step, the loss taken on the generated half: then
  G follows the very function D was trained as, which a fully trainable backbone needs (its
  BatchNormalization moving statistics lag far behind its training-mode behaviour).

Project options of the recommended preset, off in the paper's presets:

* ``r1_gamma > 0``: the D loss gains the R1 gradient penalty on the real batch
  (:func:`medgan_lib.losses.r1_gradient_penalty`), lazily: ``r1_every`` times the penalty on
  every ``r1_every``-th D update (:meth:`GAN.r1_penalty`). The ``d_loss`` metric stays the BCE.
* ``g_ema_decay > 0``: ``generator_average`` follows an exponential moving average of G's
  weights (:class:`medgan_lib.ema.WeightAverage`), updated after every G update; it is
  :attr:`GAN.sampler`, the generator whose samples and snapshots a run writes.
* ``g_mode_seeking > 0``: the G loss gains that weight times the mode-seeking penalty of the
  generated batch (:func:`medgan_lib.losses.mode_seeking_penalty`, :meth:`GAN.mode_seeking`), in
  both update orders. The ``g_loss`` metric stays the adversarial loss.

All randomness of a step comes from a checkpointed ``tf.random.Generator``, so a resumed run
draws exactly the noise the uninterrupted one would have.
Under a ``tf.distribute`` strategy (:mod:`medgan_lib.distribute`) each replica runs this step on
its slice of the global batch, with its rows of the global batch's noise and gradients scaled so
that their sum is the single-device update.

Speed options, none of which changes what a step computes in expectation, each kept apart from
the paper's step:

* feature cache (:class:`CachedRealFeatures`): with a frozen backbone (transfer mode, always in
  inference mode) a real image's features never change, so :meth:`GAN.training_inputs` computes
  them once per run and the data pipeline feeds those features instead of the images; the
  head's BatchNormalization still sees real and generated features as ONE concatenated batch.
  Off with ``cache_real_features=False``; a trainable backbone never caches.
* ``update_order="simultaneous"`` (:meth:`GAN.simultaneous_step`): one generated batch and one D
  forward serve both updates (a persistent tape, two gradients taken at the same weights, then
  both applied), instead of the paper's strict alternation. Simultaneous gradient steps are the
  common TensorFlow DCGAN form; per step it also draws one latent batch and one dropout mask
  instead of two and updates BatchNormalization moving statistics once instead of twice.
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
from .distribute import global_draw, replica_gradients
from .ema import WeightAverage
from .losses import GENERATOR_LOSSES, bce_discriminator_loss, mode_seeking_penalty, r1_gradient_penalty

log = logging.getLogger("medgan")


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


class DiscriminatorLogits:
    """D's logits as the training steps use them, from D's inputs (images).

    ``fake_inputs`` turns generated images into what D takes here; ``joint`` gives the logits of
    ONE batch [real; fake] in training mode, split into (real, fake); ``fake_only`` the logits of
    generated images in inference mode.
    """

    def __init__(self, discriminator: tf.keras.Model) -> None:
        self.discriminator = discriminator

    def fake_inputs(self, fake: tf.Tensor) -> tf.Tensor:
        return fake

    def joint(self, real: tf.Tensor, fake: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        n = tf.shape(real)[0]
        logits = self.discriminator(tf.concat([real, fake], axis=0), training=True)
        return logits[:n], logits[n:]

    def fake_only(self, fake: tf.Tensor) -> tf.Tensor:
        return self.discriminator(fake, training=False)


class CachedRealFeatures(DiscriminatorLogits):
    """The same logits for a frozen backbone whose features of the real images are cached.

    The real batch holds those features (see :meth:`GAN.training_inputs`; images are accepted
    too); generated images go through the frozen backbone (inference mode, as always in transfer
    mode) and only the head runs on [real; fake] features.
    """

    def __init__(self, features: tf.keras.Model, head: tf.keras.Model) -> None:
        self.features, self.head = features, head

    def fake_inputs(self, fake: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.features(fake, training=False), tf.float32)  # as the cached features

    def joint(self, real: tf.Tensor, fake: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        real = real if real.shape.rank == 2 else self.fake_inputs(real)
        n = tf.shape(real)[0]
        logits = self.head(tf.concat([real, fake], axis=0), training=True)
        return logits[:n], logits[n:]

    def fake_only(self, fake: tf.Tensor) -> tf.Tensor:
        return self.head(fake, training=False)

    def real_features(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """The frozen-backbone features of the real images (float32), computed once per run."""
        return np.asarray(self.features.predict(images, batch_size=batch_size, verbose=0), np.float32)


Gradients = list[tf.Tensor]


class GAN(tf.keras.Model):
    """Generator and discriminator, one ``fit`` batch per step, updated alternately or simultaneously."""

    METRICS = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")

    def __init__(self, generator: tf.keras.Model, discriminator: tf.keras.Model, config: Config,
                 generator_average: tf.keras.Model | None = None) -> None:
        super().__init__(name="gan")
        self.generator = generator
        self.discriminator = discriminator
        if (generator_average is None) != (config.g_ema_decay == 0):
            raise ValueError("a generator_average model is needed exactly when config.g_ema_decay > 0")
        self.generator_average = generator_average
        self.weight_average = WeightAverage(generator, generator_average, config.g_ema_decay) if generator_average else None
        self.r1_gamma, self.r1_every = config.r1_gamma, config.r1_every
        self.mode_seeking_weight = config.g_mode_seeking
        self.latent_dim = config.latent_dim
        self.real_label = config.real_label
        self.generator_loss = GENERATOR_LOSSES[config.g_loss]
        self.g_step_joint = config.g_step_d_batch == "joint"
        self.simultaneous = config.update_order == "simultaneous"
        split = frozen_split(discriminator) if config.cache_real_features else None
        self.d_logits = CachedRealFeatures(*split) if split else DiscriminatorLogits(discriminator)
        self.noise = tf.random.Generator.from_seed(config.seed)
        self.trackers = {name: tf.keras.metrics.Mean(name=name) for name in self.METRICS}

    @property
    def feature_cache(self) -> bool:
        """Whether the real batch holds cached frozen-backbone features instead of images."""
        return isinstance(self.d_logits, CachedRealFeatures)

    @property
    def metrics(self) -> list[tf.keras.metrics.Metric]:
        return list(self.trackers.values())

    def compile(self, g_optimizer: tf.keras.optimizers.Optimizer, d_optimizer: tf.keras.optimizers.Optimizer) -> None:
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def call(self, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.generator(z, training=training)

    def training_inputs(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """What ``train_step`` is fed for the real batch: the images, or with the feature cache
        their frozen-backbone features (float32, computed here once)."""
        if self.feature_cache:
            return self.d_logits.real_features(images, batch_size)
        return images

    @property
    def sampler(self) -> tf.keras.Model:
        """The generator whose images a run shows and saves: the weight average if there is one."""
        return self.generator_average or self.generator

    def generate(self, n: tf.Tensor) -> tf.Tensor:
        """``n`` generated images from fresh noise, G in training mode (its Dropout active)."""
        return self.generate_with_latents(n)[1]

    def generate_with_latents(self, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(latent vectors, images) of :meth:`generate`."""
        latent = global_draw(self.noise.normal, tf.stack([n, self.latent_dim]))
        return latent, self.generator(latent, training=True)

    def train_step(self, data) -> dict[str, tf.Tensor]:
        """One step of the paper's algorithm (section 2.1), or of simultaneous updates."""
        real, _, _ = tf.keras.utils.unpack_x_y_sample_weight(data)
        if self.simultaneous:
            return self.record(self.simultaneous_step(real))
        # 1. Discriminator step (eq. 2): BCE of the real batch labelled 1 (or real_label) and a
        #    generated batch labelled 0, seen by D as ONE batch; only D's weights move.
        d_grads, results = self.discriminator_gradients(real)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        # 2. Generator step (eq. 3, or eq. 4 by default): fresh noise, the updated D judges the new
        #    images, G moves so that D calls them real; only G's weights move.
        g_grads, g_results = self.generator_gradients(real)
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.update_average()
        return self.record({**results, **g_results})

    def discriminator_gradients(self, real: tf.Tensor) -> tuple[Gradients, dict[str, tf.Tensor]]:
        """Step 1: gradients of the D loss on [real; G(z)], and the step's D metrics."""
        fake = self.d_logits.fake_inputs(self.generate(tf.shape(real)[0]))
        with tf.GradientTape() as tape:
            real_logits, fake_logits = self.d_logits.joint(real, fake)
            loss = bce_discriminator_loss(real_logits, fake_logits, self.real_label)
            penalised = loss + self.r1_penalty(real)
        return replica_gradients(tape, penalised, self.discriminator.trainable_variables), self.d_metrics(loss, real_logits, fake_logits)

    def r1_penalty(self, real: tf.Tensor) -> tf.Tensor:
        """Lazy R1 (:func:`medgan_lib.losses.r1_gradient_penalty`, Karras et al. 2020): on every
        ``r1_every``-th D update the penalty times ``r1_every``, else 0; 0 without ``r1_gamma``."""
        if not self.r1_gamma:
            return tf.constant(0.0)

        def penalty() -> tf.Tensor:
            logits = lambda images: self.discriminator(images, training=True)  # noqa: E731
            return float(self.r1_every) * r1_gradient_penalty(logits, real, self.r1_gamma)

        due = tf.equal(self.d_optimizer.iterations % self.r1_every, 0)
        return tf.cond(due, penalty, lambda: tf.constant(0.0))

    def update_average(self) -> None:
        """After a G update: move the generator's weight average (if any) one step."""
        if self.weight_average is not None:
            self.weight_average.update()

    def generator_gradients(self, real: tf.Tensor) -> tuple[Gradients, dict[str, tf.Tensor]]:
        """Step 2: gradients of the G loss on a freshly generated batch (D in inference mode, or
        in training mode on [real; fake] with ``g_step_d_batch="joint"``)."""
        with tf.GradientTape() as tape:
            latent, images = self.generate_with_latents(tf.shape(real)[0])
            fake = self.d_logits.fake_inputs(images)
            if self.g_step_joint:
                fake_logits = self.d_logits.joint(real, fake)[1]
            else:
                fake_logits = self.d_logits.fake_only(fake)
            loss = self.generator_loss(fake_logits)
            penalised = loss + self.mode_seeking(latent, images)
        return replica_gradients(tape, penalised, self.generator.trainable_variables), {"g_loss": loss}

    def mode_seeking(self, latent: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
        """The mode-seeking penalty (:func:`medgan_lib.losses.mode_seeking_penalty`, Mao et al. 2019)
        times ``g_mode_seeking``; 0 without it."""
        if not self.mode_seeking_weight:
            return tf.constant(0.0)
        return self.mode_seeking_weight * mode_seeking_penalty(latent, images)

    def simultaneous_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        """Both updates from one generated batch and one D forward, gradients at the same weights."""
        d_grads, g_grads, results = self.simultaneous_gradients(real)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.update_average()
        return results

    def simultaneous_gradients(self, real: tf.Tensor) -> tuple[Gradients, Gradients, dict[str, tf.Tensor]]:
        """D and G gradients, both at the current weights, from one generated batch and one D forward."""
        with tf.GradientTape(persistent=True) as tape:
            latent, images = self.generate_with_latents(tf.shape(real)[0])
            fake = self.d_logits.fake_inputs(images)
            real_logits, fake_logits = self.d_logits.joint(real, fake)
            d_loss = bce_discriminator_loss(real_logits, fake_logits, self.real_label)
            penalised = d_loss + self.r1_penalty(real)
            g_loss = self.generator_loss(fake_logits if self.g_step_joint else self.d_logits.fake_only(fake))
            g_penalised = g_loss + self.mode_seeking(latent, images)
        d_grads = replica_gradients(tape, penalised, self.discriminator.trainable_variables)
        g_grads = replica_gradients(tape, g_penalised, self.generator.trainable_variables)
        del tape
        return d_grads, g_grads, {**self.d_metrics(d_loss, real_logits, fake_logits), "g_loss": g_loss}

    def d_metrics(self, loss: tf.Tensor, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"d_loss": loss, "d_real_accuracy": real_accuracy(real_logits),
                "d_fake_accuracy": fake_accuracy(fake_logits)}

    def record(self, results: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Add one step's values to the epoch means; returns the means so far."""
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


def learning_rate_factor(config: Config, epoch: int) -> float:
    """The factor on both learning rates during ``epoch`` (1-based): 1, and over the last
    ``k = round(lr_decay_fraction * epochs)`` epochs a line falling to 0 at the end of training,
    read at the middle of each epoch: ``min(1, (epochs - epoch + 0.5) / k)``. A function of the
    epoch alone, so a resumed run continues the same schedule."""
    decay_epochs = round(config.lr_decay_fraction * config.epochs)
    if not decay_epochs:
        return 1.0
    return min(1.0, (config.epochs - epoch + 0.5) / decay_epochs)


def set_learning_rates(gan: "GAN", config: Config, epoch: int) -> None:
    """Both optimisers at their configured rate times :func:`learning_rate_factor` for ``epoch``."""
    factor = learning_rate_factor(config, epoch)
    gan.g_optimizer.learning_rate.assign(config.g_learning_rate * factor)
    gan.d_optimizer.learning_rate.assign(config.d_learning_rate * factor)


def make_optimizers(config: Config) -> tuple[tf.keras.optimizers.Optimizer, tf.keras.optimizers.Optimizer]:
    """Adam for G and D (the paper names no optimiser; Adam 2e-4, beta_1 0.5 is the DCGAN default)."""
    optimizer = FusedAdam if config.fused_adam else tf.keras.optimizers.Adam

    def adam(learning_rate: float, name: str) -> tf.keras.optimizers.Optimizer:
        return optimizer(learning_rate, beta_1=config.adam_beta_1, beta_2=config.adam_beta_2, name=name)

    return adam(config.g_learning_rate, "g_adam"), adam(config.d_learning_rate, "d_adam")
