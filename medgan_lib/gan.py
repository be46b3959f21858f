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
"""
from __future__ import annotations

import tensorflow as tf

from .config import Config


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


class GAN(tf.keras.Model):
    """Generator and discriminator trained in alternation, one ``fit`` batch per step."""

    METRICS = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")

    def __init__(self, generator: tf.keras.Model, discriminator: tf.keras.Model, config: Config) -> None:
        super().__init__(name="gan")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = config.latent_dim
        self.real_label = config.real_label
        self.generator_loss = GENERATOR_LOSSES[config.g_loss]
        self.g_step_joint = config.g_step_d_batch == "joint"
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

    def discriminator_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        """Update D on one concatenated batch of real and generated images."""
        n = tf.shape(real)[0]
        fake = self.generator(self.sample_latent(n), training=True)
        with tf.GradientTape() as tape:
            logits = self.discriminator(tf.concat([real, tf.cast(fake, real.dtype)], axis=0), training=True)
            real_logits, fake_logits = logits[:n], logits[n:]
            loss = discriminator_loss(real_logits, fake_logits, self.real_label)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {
            "d_loss": loss,
            "d_real_accuracy": real_accuracy(real_logits),
            "d_fake_accuracy": fake_accuracy(fake_logits),
        }

    def generator_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        """Update G so that D calls its images real."""
        n = tf.shape(real)[0]
        with tf.GradientTape() as tape:
            fake = tf.cast(self.generator(self.sample_latent(n), training=True), real.dtype)
            if self.g_step_joint:
                fake_logits = self.discriminator(tf.concat([real, fake], axis=0), training=True)[n:]
            else:
                fake_logits = self.discriminator(fake, training=False)
            loss = self.generator_loss(fake_logits)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"g_loss": loss}

    def train_step(self, data) -> dict[str, tf.Tensor]:
        real, _, _ = tf.keras.utils.unpack_x_y_sample_weight(data)
        results = self.discriminator_step(real)
        results.update(self.generator_step(real))
        for name, value in results.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def make_optimizers(config: Config) -> tuple[tf.keras.optimizers.Optimizer, tf.keras.optimizers.Optimizer]:
    """Adam for G and D (the paper names no optimiser; Adam 2e-4, beta_1 0.5 is the DCGAN default)."""

    def adam(learning_rate: float, name: str) -> tf.keras.optimizers.Optimizer:
        return tf.keras.optimizers.Adam(learning_rate, beta_1=config.adam_beta_1, beta_2=config.adam_beta_2, name=name)

    return adam(config.g_learning_rate, "g_adam"), adam(config.d_learning_rate, "d_adam")
