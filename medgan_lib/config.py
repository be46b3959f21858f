"""Run configuration and the presets.

The paper gives the architecture but not the image size, latent size, batch size,
optimiser or learning rates. Every such choice is a field here, with the value each preset uses
and why.

* ``paper``: the closest faithful reading: 256x256x3 images, latent 1024, a 4x4x1024 start,
  six upsampling levels of the literal Table 1 filters, the Xception transfer discriminator
  with the paper's 2,048-parameter head, 600 epochs.
* ``cpu``: the embedded default of ``make reproduce``, sized for a 2-core CPU: the paper preset
  plus the changes of ``CPU_CHANGES``, each field with the reason it departs (:func:`derive`
  writes the reasons into ``Config.notes``; a test checks that ``cpu`` differs from ``paper`` in
  exactly those fields). A new recommended preset is one more such table.
* ``medgan``: the project's recommended synthesis method for 64x64 grayscale, sized for a 2-core
  CPU and needing no ImageNet file: the paper preset plus ``MEDGAN_CHANGES`` (same mechanism).
* ``medgan_smoke``: the medgan preset at the smoke preset's scale (``MEDGAN_SMOKE_CHANGES``), for
  tests and the notebooks' checks.
* ``smoke``: a few seconds, for CI.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError
from .phantom import LANDMARK_NAMES

D_MODES = ("transfer", "scratch", "auto")
DISCRIMINATORS = ("paper", "dcgan", "projected", "conv")
GENERATORS = ("paper", "resize_conv")
G_LOSSES = ("non_saturating", "saturating")
G_STEP_D_BATCHES = ("inference", "joint")
UPDATE_ORDERS = ("alternating", "simultaneous")
STRATEGIES = ("default", "mirrored", "multiworker")  # train --strategy: a run option, not a Config field
MINIBATCH_STD_GROUP = 4  # images per group of the conv discriminator's minibatch standard deviation
LOGICAL_CPUS_ENV = "MEDGAN_LOGICAL_CPUS"  # how many logical CPU devices to split the CPU into


_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str, "tuple[str, ...]": tuple}


def _check_type(name: str, annotation: str, value: Any) -> None:
    """``value`` must be of the field's annotated type (``X | None`` also allows None)."""
    kind, _, optional = annotation.partition(" | ")
    if optional == "None" and value is None:
        return
    expected = _TYPES[kind]
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise ConfigError(name, f"must be {'a number' if kind == 'float' else f'of type {kind}'}, got {value!r}")


def check_backbone_alpha(backbone: str) -> None:
    """The width multiplier alpha after "@" (MobileNet@0.25) must be a positive number."""
    name, at, alpha_text = backbone.partition("@")
    if not at:
        return
    try:
        alpha = float(alpha_text)
    except ValueError:
        alpha = math.nan
    if not 0.0 < alpha < math.inf:
        raise ConfigError("backbone", f"width multiplier (alpha) after '@' must be a positive number such as "
                                      f"{name or 'MobileNet'}@0.25; got {backbone!r}")
AUGMENT_POLICY = ("color", "translation", "cutout")  # DiffAugment's operations


@dataclass(frozen=True)
class Config:
    """Everything that determines a training run (together with the data it loads)."""

    preset: str
    # data
    data: str = "phantom"
    n_images: int | None = None  # phantom size, or a cap on a loaded set (None: all)
    channels: int = 3
    # Share of a loaded set (folder/npz/MedMNIST: files or rows) held out of training for evaluation,
    # split deterministically by name; 0 trains on everything. The phantom's held-out images are
    # another phantom seed whatever the value, so it never changes a phantom run's training data.
    holdout: float = 0.0
    # generator (paper section 2.2, Table 1)
    latent_dim: int = 1024
    start_size: int = 4
    start_channels: int = 1024
    levels: int = 6
    width: int = 1  # multiplier on every level's filters; the paper is 1
    dropout: float = 0.2
    gn_groups: int = 32  # capped by the channel count of each level
    # Architecture (project option): "paper" (the literal Table 1 levels above) or "resize_conv"
    # (nearest upsampling + 3x3 conv + BN + ReLU per level, same level widths: no checkerboard;
    # dropout and gn_groups unused), with noise injection in its last ``g_noise_levels`` levels.
    generator: str = "paper"
    g_noise_levels: int = 0
    g_noise_modulated: bool = False  # noise strength also scaled per image by exp(Dense(z)): images differ in grain
    g_ema_decay: float = 0.0  # > 0: an exponential moving average of G's weights makes the samples
    # discriminator (paper section 2.3)
    d_mode: str = "transfer"
    backbone: str = "Xception"
    d_minibatch_std: bool = False  # project option, not in the paper
    d_input_size: int | None = None  # images resized to this before the backbone (None: image size)
    # Architecture (project option, see discriminator.py): "paper" (backbone + the paper's head,
    # d_mode as above), "dcgan" (small trainable conv net + the paper's head; d_mode and backbone
    # unused) or "projected" (Projected GAN: the backbone, always frozen, tapped at four depths;
    # d_mode picks ImageNet ("transfer") or random ("scratch") backbone weights) or "conv" (a
    # small trainable conv net without BatchNorm, logits from a Dense layer; spectral norm with
    # d_spectral_norm).
    discriminator: str = "paper"
    d_spectral_norm: bool = False
    diff_augment: bool = False  # DiffAugment on every image D sees, with the policy below
    diff_augment_policy: str = "color,translation,cutout"
    # Labelled synthesis (project option): the generator also outputs one heatmap channel per
    # phantom landmark (medgan_lib.landmarks, in [-1, 1]) and D sees image + heatmaps; phantom data only.
    landmark_heatmaps: bool = False
    # Passes over the training images per epoch (each epoch one permutation of the repeated set):
    # for sets of a few dozen images, where one step per epoch would be mostly per-epoch overhead.
    data_repeats: int = 1
    # training (paper section 2.1)
    epochs: int = 600
    batch_size: int = 16
    g_loss: str = "non_saturating"
    # How D sees the generated batch in the G step: "inference" (moving statistics, as a frozen
    # Keras model; the paper's Keras setup) or "joint" (training mode on real + generated, as in
    # the D step, the loss taken on the generated half).
    g_step_d_batch: str = "inference"
    # Order of the two updates of a step: "alternating" (the paper: D update, then a fresh
    # generated batch for the G update against the updated D) or "simultaneous" (one generated
    # batch and one D forward serve both updates; both gradients at the same weights).
    update_order: str = "alternating"
    # Frozen (transfer) backbone: real images' features computed once per run, not every step.
    cache_real_features: bool = True
    # mixed_bfloat16: bf16 compute, float32 variables, D head / logits, tanh output and losses.
    mixed_precision: bool = False
    g_learning_rate: float = 2e-4
    # > 0: both learning rates fall linearly to 0 over the last round(lr_decay_fraction * epochs) epochs
    # (gan.learning_rate_factor); the weights stop wandering, so the last snapshot is not a random draw.
    lr_decay_fraction: float = 0.0
    d_learning_rate: float = 2e-4
    adam_beta_1: float = 0.5
    adam_beta_2: float = 0.999
    fused_adam: bool = True  # Adam's update as TF's fused ResourceApplyAdam kernel (same formula as Keras')
    real_label: float = 1.0  # < 1 is one-sided label smoothing (Salimans et al. 2016)
    r1_gamma: float = 0.0  # > 0: R1 gradient penalty on real images, weight gamma (Mescheder et al. 2018)
    r1_every: int = 4  # lazy R1: the penalty (times r1_every) on every r1_every-th D update
    g_mode_seeking: float = 0.0  # > 0: weight of the mode-seeking penalty in G's loss (Mao et al. 2019)
    seed: int = 0
    n_fixed_samples: int = 16
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_type(f.name, f.type, getattr(self, f.name))
        for name, choices in (("d_mode", D_MODES), ("discriminator", DISCRIMINATORS), ("generator", GENERATORS),
                              ("g_loss", G_LOSSES),
                              ("g_step_d_batch", G_STEP_D_BATCHES), ("update_order", UPDATE_ORDERS)):
            if getattr(self, name) not in choices:
                raise ConfigError(name, f"must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        if not 0 <= self.g_noise_levels <= self.levels:
            raise ConfigError("g_noise_levels", f"must be in [0, levels={self.levels}], got {self.g_noise_levels}")
        if self.g_noise_levels and self.generator != "resize_conv":
            raise ConfigError("g_noise_levels", "needs generator='resize_conv'")
        if self.g_noise_modulated and not self.g_noise_levels:
            raise ConfigError("g_noise_modulated", "needs noise injection (g_noise_levels > 0)")
        if self.d_minibatch_std and self.discriminator == "conv" and self.batch_size % MINIBATCH_STD_GROUP:
            raise ConfigError("batch_size", f"must be a multiple of {MINIBATCH_STD_GROUP} with the conv discriminator's "
                                            f"minibatch standard deviation (groups of {MINIBATCH_STD_GROUP} images), "
                                            f"got {self.batch_size}")
        if not 0.0 <= self.g_ema_decay < 1.0:
            raise ConfigError("g_ema_decay", f"must be in [0, 1), got {self.g_ema_decay}")
        if self.r1_gamma < 0:
            raise ConfigError("r1_gamma", f"must be >= 0, got {self.r1_gamma}")
        if self.g_mode_seeking < 0:
            raise ConfigError("g_mode_seeking", f"must be >= 0, got {self.g_mode_seeking}")
        if self.r1_every < 1:
            raise ConfigError("r1_every", f"must be >= 1, got {self.r1_every}")
        if set(self.augment_policy) - set(AUGMENT_POLICY) or not self.augment_policy:
            raise ConfigError("diff_augment_policy", f"must be a comma-separated subset of {', '.join(AUGMENT_POLICY)}; "
                                                     f"got {self.diff_augment_policy!r}")
        if self.channels not in (1, 3):
            raise ConfigError("channels", f"must be 1 or 3, got {self.channels}")
        for name in ("epochs", "batch_size", "latent_dim", "start_size", "start_channels", "levels", "width",
                     "gn_groups", "n_fixed_samples", "n_images", "d_input_size", "data_repeats"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(name, f"must be >= 1, got {value}")
        if self.seed < 0:
            raise ConfigError("seed", f"must be >= 0, got {self.seed}")
        for name in ("g_learning_rate", "d_learning_rate"):
            if not 0.0 < getattr(self, name) < math.inf:
                raise ConfigError(name, f"must be a positive number, got {getattr(self, name)}")
        for name in ("adam_beta_1", "adam_beta_2", "dropout", "holdout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(name, f"must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.lr_decay_fraction <= 1.0:
            raise ConfigError("lr_decay_fraction", f"must be in [0, 1], got {self.lr_decay_fraction}")
        if not 0.0 < self.real_label <= 1.0:
            raise ConfigError("real_label", f"must be in (0, 1], got {self.real_label}")
        check_backbone_alpha(self.backbone)

    @property
    def output_channels(self) -> int:
        """Channels of the generator's output (and D's input): the image's, plus one per landmark if labelled."""
        return self.channels + (len(LANDMARK_NAMES) if self.landmark_heatmaps else 0)

    @property
    def augment_policy(self) -> tuple[str, ...]:
        """``diff_augment_policy`` as a tuple of DiffAugment's operation names."""
        return tuple(p.strip() for p in self.diff_augment_policy.split(",") if p.strip())

    @property
    def image_size(self) -> int:
        """Side of the generated images: each level doubles the start size."""
        return self.start_size * 2**self.levels

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        d["image_size"] = self.image_size
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        kwargs["notes"] = tuple(kwargs.get("notes", ()))
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


PAPER = Config(preset="paper")

Changes = Mapping[str, tuple[Any, str]]  # field -> (value, why it departs from the base preset)


def derive(name: str, base: Config, changes: Changes) -> Config:
    """The preset ``name``: ``base`` with ``changes``; its notes give every reason once, with its fields."""
    fields_by_reason: dict[str, list[str]] = {}
    for field_name, (_, reason) in changes.items():
        fields_by_reason.setdefault(reason, []).append(field_name)
    notes = tuple(f"{', '.join(f'{f}={changes[f][0]!r}' for f in names)}: {reason}"
                  for reason, names in fields_by_reason.items())
    return base.replace(preset=name, notes=notes, **{f: value for f, (value, _) in changes.items()})


_CPU_SIZE = ("64x64 grayscale from a 4x4x256 start through 4 upsampling levels (paper: 256x256x3, 6 levels): "
             "about 3 images/s at 256 px on a 2-core CPU is too slow for 600 epochs, and 6 levels at 64 px "
             "would start from 1x1")
_CPU_GENERATOR = ("generator width x8 (level filters 64, 32, 16, 8 instead of 32..1) and latent size 128 "
                  "(paper: 1024): the paper's width-1 levels end in 1-filter branches")
_CPU_BACKBONE = ("MobileNet alpha 0.25, one of the paper's eight backbones (0.2 M frozen parameters), "
                 "instead of Xception; 'auto': the paper's transfer method when the ImageNet weights are "
                 "found, else a loud fallback to a trainable backbone")
_CPU_JOINT = ("G step with D in training mode on the joint real + generated batch (paper's Keras setup: "
              "inference mode): with inference mode the samples converged to one pattern within 10 epochs")
_CPU_MBSTD = "minibatch standard deviation as one more input to the paper's head (BN + Dense)"
_CPU_D_BALANCE = ("one-sided label smoothing (real label 0.9) and a discriminator learning rate of 4e-4 "
                  "(TTUR): with 2e-4 the checkerboard texture dominated after 100 epochs")
_CPU_DATA = "512 phantom images, batch 32 (16 steps per epoch)"
_CPU_ORDER = ("simultaneous G and D updates from one generated batch (paper: strict alternation): twice as "
              "fast per epoch, sample quality within the seed-to-seed spread at 150 epochs")

CPU_CHANGES: Changes = {
    "channels": (1, _CPU_SIZE),
    "start_channels": (256, _CPU_SIZE),
    "levels": (4, _CPU_SIZE),
    "width": (8, _CPU_GENERATOR),
    "latent_dim": (128, _CPU_GENERATOR),
    "d_mode": ("auto", _CPU_BACKBONE),
    "backbone": ("MobileNet@0.25", _CPU_BACKBONE),
    "g_step_d_batch": ("joint", _CPU_JOINT),
    "d_minibatch_std": (True, _CPU_MBSTD),
    "real_label": (0.9, _CPU_D_BALANCE),
    "d_learning_rate": (4e-4, _CPU_D_BALANCE),
    "n_images": (512, _CPU_DATA),
    "batch_size": (32, _CPU_DATA),
    "update_order": ("simultaneous", _CPU_ORDER),
}

CPU = derive("cpu", PAPER, CPU_CHANGES)

_MEDGAN_SIZE = ("64x64 grayscale from a 4x4x256 start through 4 levels, latent 128, 512 phantom images, "
                "batch 32: the cpu preset's data and scale")
_MEDGAN_GENERATOR = ("resize-then-convolve generator (nearest upsampling, 3x3 conv, BN, ReLU; level filters "
                     "128, 64, 32, 16): the paper's stride-2 transposed convolutions paint a checkerboard")
_MEDGAN_NOISE = ("per-pixel noise injection in the two finest levels: without it the samples lack the "
                 "images' quantum grain")
_MEDGAN_D = ("a small trainable conv discriminator (32-256 filters, no BatchNorm) from random init: no "
             "ImageNet file needed, and the frozen backbone's features barely see pixel-scale texture")
_MEDGAN_MBSTD = ("minibatch standard deviation over groups of 4 images at D's 4x4 maps: D sees a batch's lack of "
                 "variety (phantom seed 0, 150 epochs: SWD x1e3 24.9 -> 21.8, MS-SSIM 0.230 -> 0.224)")
_MEDGAN_R1 = "lazy R1 gradient penalty on real images (gamma 0.05 every 4th D step) keeps D smooth on 512 images"
_MEDGAN_AUGMENT = ("DiffAugment translation + cutout on every image D sees: 512 images are few enough for D "
                   "to memorise them")
_MEDGAN_EMA = "samples and snapshots from an exponential moving average of G's weights (decay 0.99)"
_MEDGAN_MODE_SEEKING = ("mode-seeking penalty (Mao et al. 2019) on 4x4-pooled images, weight 0.3, in G's loss: "
                        "without it the samples were more alike than the frames at every seed (MS-SSIM 0.05 above "
                        "the real frames')")
_MEDGAN_BF16 = ("bfloat16 mixed precision: on this CPU (native bf16) the alternating loop runs 2x as fast on one core "
                "and 1.3x on two, at the same quality (phantom seed 0, 150 epochs: SWD x1e3 21.8 f32 vs 22.7 bf16, "
                "recall 0.49 both)")
_MEDGAN_ADAM = "Adam beta_2 0.99 (common for GANs with R1)"
_MEDGAN_EPOCHS = ("210 epochs (3,360 steps), both learning rates falling linearly to 0 over the last 60: after 150 "
                  "epochs at full rate the last snapshot was a random draw (seed 1: SWD x1e3 27.4 at epoch 100, 42.7 "
                  "at 125, 40.0 at 150); 60 more epochs gave 20.6 (seed 1) and 21.2 (seed 2, 24.2 at constant rates)")

MEDGAN_CHANGES: Changes = {
    "channels": (1, _MEDGAN_SIZE),
    "start_channels": (256, _MEDGAN_SIZE),
    "levels": (4, _MEDGAN_SIZE),
    "latent_dim": (128, _MEDGAN_SIZE),
    "n_images": (512, _MEDGAN_SIZE),
    "batch_size": (32, _MEDGAN_SIZE),
    "generator": ("resize_conv", _MEDGAN_GENERATOR),
    "width": (16, _MEDGAN_GENERATOR),
    "g_noise_levels": (2, _MEDGAN_NOISE),
    "discriminator": ("conv", _MEDGAN_D),
    "d_mode": ("scratch", _MEDGAN_D),
    "d_minibatch_std": (True, _MEDGAN_MBSTD),
    "r1_gamma": (0.05, _MEDGAN_R1),
    "diff_augment": (True, _MEDGAN_AUGMENT),
    "diff_augment_policy": ("translation,cutout", _MEDGAN_AUGMENT),
    "g_ema_decay": (0.99, _MEDGAN_EMA),
    "g_mode_seeking": (0.3, _MEDGAN_MODE_SEEKING),
    "mixed_precision": (True, _MEDGAN_BF16),
    "adam_beta_2": (0.99, _MEDGAN_ADAM),
    "epochs": (210, _MEDGAN_EPOCHS),
    "lr_decay_fraction": (2 / 7, _MEDGAN_EPOCHS),
}

MEDGAN = derive("medgan", PAPER, MEDGAN_CHANGES)

_MEDGAN_SMOKE_SCALE = ("the medgan preset at the smoke preset's scale (32x32 from a 4x4x32 start through 3 levels, "
                       "latent 32, 64 images, batch 16, 3 epochs) for tests and notebook checks: seconds, not minutes")
_MEDGAN_SMOKE_EMA = ("weight-average decay 0.7: its horizon scaled to the 12 steps of this run (the medgan "
                     "preset's 0.99 is for 2,400 steps)")

MEDGAN_SMOKE_CHANGES: Changes = {
    "levels": (3, _MEDGAN_SMOKE_SCALE),
    "start_channels": (32, _MEDGAN_SMOKE_SCALE),
    "width": (2, _MEDGAN_SMOKE_SCALE),
    "latent_dim": (32, _MEDGAN_SMOKE_SCALE),
    "n_images": (64, _MEDGAN_SMOKE_SCALE),
    "batch_size": (16, _MEDGAN_SMOKE_SCALE),
    "epochs": (3, _MEDGAN_SMOKE_SCALE),
    "n_fixed_samples": (8, _MEDGAN_SMOKE_SCALE),
    "g_ema_decay": (0.7, _MEDGAN_SMOKE_EMA),
}

MEDGAN_SMOKE = derive("medgan_smoke", MEDGAN, MEDGAN_SMOKE_CHANGES)  # its notes are its departures from medgan

SMOKE = Config(
    preset="smoke",
    n_images=64,
    channels=1,
    latent_dim=32,
    start_size=4,
    start_channels=32,
    levels=3,
    width=2,
    d_mode="scratch",
    backbone="MobileNetV2@0.35",
    epochs=3,
    batch_size=16,
    n_fixed_samples=4,
)

PRESETS: dict[str, Config] = {c.preset: c for c in (PAPER, CPU, MEDGAN, MEDGAN_SMOKE, SMOKE)}


def preset(name: str) -> Config:
    """The named preset; a clear error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError("preset", f"must be one of {', '.join(sorted(PRESETS))}; got {name!r}") from None
