"""The paper's transfer-learning discriminator (section 2.3, Tables 2 and 3).

Structure (all layers are plain Keras layers or weight-free custom layers, so the model
checkpoints with ``tf.train.Checkpoint``)::

    images (H, W, C) in [-1, 1], C = 1 or 3
      -> ToBackboneInput ("to_backbone_input"): grey -> 3 channels, bilinear resize up to the
         backbone's minimum input size, [-1, 1] -> [0, 255], the backbone's preprocess_input
      -> backbone sub-model: keras.applications.<Name>(include_top=False, pooling="avg")
      -> "head" sub-model:
           [MinibatchStdDev]   (project option, off by default; not in the paper)
           BatchNormalization(center=False, scale=False)
           Dense(1, use_bias=False)  -> LOGIT

The paper's Dense has a sigmoid. We return the logit and apply the sigmoid inside the binary
cross-entropy (``from_logits=True``): mathematically identical, numerically stable.
``split_discriminator`` returns (features_model, head_model) sharing the same variables, so
training code can compute features = features_model(x) and logits = head(features, training).

Modes: "transfer" (the paper: ImageNet weights located by :mod:`medgan_lib.pretrained`,
backbone frozen and always called with ``training=False``, so its BatchNormalization stays in
inference mode), "scratch" (same backbone, random init, fully trainable, BN follows the
``training`` flag), "auto" (transfer if the weights can be found, else scratch with a loud
warning). "transfer" never degrades silently: it raises WeightsUnavailable.

Pretrained MobileNet/MobileNetV2 weights exist only for fixed widths (alpha) and Keras picks
them by input size (it falls back to the 224 files with a warning for other sizes). We always
load the 224 file by path; convolution and BN weights do not depend on the input size, so it
loads at any size >= 32 and Keras emits no warning. NASNetMobile likewise loads at any size.

Variants (``kind``; project options beside the paper's, for the comparison of issue 5). All map
images in [-1, 1] to logits (N, 1) and work with :class:`medgan_lib.gan.GAN` unchanged:

* ``"paper"``: the above.
* ``"dcgan"``: the baseline every GAN user knows, a small trainable convolutional network
  (Radford et al. 2016): 4x4 stride-2 convolutions with LeakyReLU(0.2), filters 64, 128, 256,
  256, ... until the maps are at most 4x4, no normalisation inside and no spectral norm; then
  the flattened maps go into the paper's head, so the concatenated-batch rule of the head's
  BatchNormalization applies unchanged. ``backbone`` and ``mode`` are not used (mode "scratch").
* ``"projected"``: Projected GAN (Sauer et al. 2021). The backbone is ALWAYS frozen (inference
  mode) and tapped at the ends of its last four resolution stages (MobileNet at 64 px: 16, 8,
  4 and 2 px maps); each tap goes through a fixed random 1x1 channel mixing (non-trainable,
  the paper's CCM; its cross-scale mixing is left out) to 64 channels and a small trainable
  head: 4x4 stride-2 conv + BN + LeakyReLU(0.2) blocks down to at most 4x4 (one 3x3 block for
  maps already that small), then a convolution over the whole map -> one logit per scale. The
  scales' logits are averaged. ``mode`` picks the backbone weights: "transfer" ImageNet,
  "scratch" random (still frozen: an ablation, random features are much weaker), "auto" as
  above. The heads' BatchNormalization also needs real and generated images in one batch.
  ``head_minibatch_std`` is not used.

``diff_augment=True`` wraps any of them as ``D(T(x))`` with :class:`DiffAugment` (Zhao et al.
2020): colour, translation and cutout, differentiable, random per image, applied on EVERY call
(D step and G step, training or inference mode, real and generated alike), its randomness from a
``tf.random.Generator`` owned by the layer and so checkpointed with D. The wrapped model has no
top-level "head" layer, so the GAN never caches real features for it (they change every step).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Callable

import tensorflow as tf
from tensorflow import keras

from medgan_lib.config import D_MODES, DISCRIMINATORS
from medgan_lib.params import compare_counts, parameter_counts
from medgan_lib.pretrained import (
    MOBILENET_ALPHAS,
    MOBILENET_V2_ALPHAS,
    WeightsUnavailable,
    resolve_imagenet_weights,
)

LOGGER = logging.getLogger("medgan")

MODES, KINDS = D_MODES, DISCRIMINATORS  # the config's choices of ``d_mode`` and ``discriminator``
LEAK = 0.2  # LeakyReLU slope of the dcgan and projected variants (DCGAN)
DCGAN_FILTERS = (64, 128, 256)  # per stride-2 convolution; the last repeats
PROJECTED_TAPS = 4  # backbone depths tapped by the projected discriminator
PROJECTED_CHANNELS = 64  # random 1x1 mixing output and head width per scale


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """A Keras Applications backbone and the paper's Table 2 figures for it."""

    name: str
    module: str
    min_size: int
    paper_size_mb: int
    paper_top1: float
    paper_top5: float
    paper_params: int


BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in (
        BackboneSpec("Xception", "xception", 71, 88, 0.790, 0.945, 22_910_480),
        BackboneSpec("ResNet50", "resnet", 32, 98, 0.749, 0.921, 25_636_712),
        BackboneSpec("ResNet101", "resnet", 32, 171, 0.764, 0.928, 44_707_176),
        BackboneSpec("ResNet50V2", "resnet_v2", 32, 98, 0.760, 0.930, 25_613_800),
        BackboneSpec("InceptionV3", "inception_v3", 75, 92, 0.779, 0.937, 23_851_784),
        BackboneSpec("MobileNet", "mobilenet", 32, 16, 0.704, 0.895, 4_253_864),
        BackboneSpec("MobileNetV2", "mobilenet_v2", 32, 14, 0.713, 0.901, 3_538_984),
        BackboneSpec("NASNetMobile", "nasnet", 32, 23, 0.744, 0.919, 5_326_716),
    )
}

# Table 3, discriminator column.
PAPER_D_PARAMS = {"total": 20_867_624, "trainable": 2_048, "non_trainable": 20_865_576}


def parse_backbone(backbone: str) -> tuple[str, float | None]:
    """Split "MobileNet@0.25" into ("MobileNet", 0.25); widths only for the MobileNets."""
    name, _, width = backbone.partition("@")
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    if not width:
        return name, (1.0 if name in ("MobileNet", "MobileNetV2") else None)
    if name not in ("MobileNet", "MobileNetV2"):
        raise ValueError(f"{name} has no width multiplier (got {backbone!r})")
    alpha = float(width)
    if alpha <= 0:
        raise ValueError(f"width must be positive (got {backbone!r})")
    return name, alpha


def _preprocess_fn(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The backbone's own ``preprocess_input``."""
    return getattr(keras.applications, BACKBONES[name].module).preprocess_input


class ToBackboneInput(keras.layers.Layer):
    """Images in [-1, 1] (1 or 3 channels) -> the backbone's expected input. No weights."""

    def __init__(self, backbone: str, target_size: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.target_size = tuple(int(s) for s in target_size)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        """Replicate grey, resize if needed, map to [0, 255], apply preprocess_input."""
        x = tf.cast(images, tf.float32)
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        if tuple(x.shape[1:3]) != self.target_size:
            x = tf.image.resize(x, self.target_size, method="bilinear")
        return _preprocess_fn(self.backbone)((x + 1.0) * 127.5)

    def get_config(self) -> dict[str, Any]:
        """Serialisable config."""
        return {**super().get_config(), "backbone": self.backbone,
                "target_size": self.target_size}


class DiffAugment(keras.layers.Layer):
    """Differentiable augmentation (Zhao et al. 2020) of images in [-1, 1]; no weights.

    ``policy`` is a subset of ("color", "translation", "cutout"), applied in that order with
    DiffAugment's settings: brightness +U(-0.5, 0.5), saturation x U(0, 2) (identity on grey),
    contrast x U(0.5, 1.5); a shift of up to 1/8 of the size with zero fill; one zero square of
    half the size at a random centre. Every image draws its own parameters from the layer's
    ``tf.random.Generator``, on every call. An empty policy is the identity.
    """

    POLICY = ("color", "translation", "cutout")

    def __init__(self, policy: tuple[str, ...] = POLICY, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        unknown = set(policy) - set(self.POLICY)
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {sorted(unknown)}; choose from {self.POLICY}")
        self.policy = tuple(p for p in self.POLICY if p in policy)
        self.seed = seed
        self.rng = tf.random.Generator.from_seed(seed).split(1)[0]  # not the GAN's noise stream

    def _factor(self, x: tf.Tensor) -> tf.Tensor:
        """One U(0, 1) draw per image, shaped (N, 1, 1, 1)."""
        return self.rng.uniform(tf.stack([tf.shape(x)[0], 1, 1, 1]))

    def _color(self, x: tf.Tensor) -> tf.Tensor:
        x = x + (self._factor(x) - 0.5)
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * (self._factor(x) * 2.0) + mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        return (x - mean) * (self._factor(x) + 0.5) + mean

    def _offsets(self, x: tf.Tensor, low: int, high: int) -> tf.Tensor:
        """Integer draws in [low, high) per image, shaped (N, 1)."""
        return self.rng.uniform(tf.stack([tf.shape(x)[0], 1]), low, high, dtype=tf.int32)

    def _translation(self, x: tf.Tensor, ratio: float = 0.125) -> tf.Tensor:
        height, width = x.shape[1], x.shape[2]
        shift_y, shift_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
        rows = tf.range(height)[None, :] - self._offsets(x, -shift_y, shift_y + 1)  # source rows (N, H)
        cols = tf.range(width)[None, :] - self._offsets(x, -shift_x, shift_x + 1)
        x = tf.gather(x, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
        x = tf.gather(x, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
        return x * tf.cast(inside, x.dtype)[..., None]

    def _cutout(self, x: tf.Tensor, ratio: float = 0.5) -> tf.Tensor:
        height, width = x.shape[1], x.shape[2]
        size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
        top = self._offsets(x, 0, height + 1 - size_y % 2)[:, :, None] - size_y // 2  # (N, 1, 1)
        left = self._offsets(x, 0, width + 1 - size_x % 2)[:, :, None] - size_x // 2
        ys, xs = tf.range(height)[None, :, None], tf.range(width)[None, None, :]
        hole = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
        return x * (1.0 - tf.cast(hole, x.dtype))[..., None]

    def call(self, images: tf.Tensor) -> tf.Tensor:
        """Apply the policy to every image (float32)."""
        x = tf.cast(images, tf.float32)
        for name in self.policy:
            x = getattr(self, f"_{name}")(x)
        return x

    def get_config(self) -> dict[str, Any]:
        """Serialisable config."""
        return {**super().get_config(), "policy": self.policy, "seed": self.seed}


class MinibatchStdDev(keras.layers.Layer):
    """Append the batch-mean of per-feature standard deviations across the batch.

    Minibatch standard deviation (Karras et al., 2018) on pooled features; a project option.
    """

    def call(self, features: tf.Tensor) -> tf.Tensor:
        """(N, F) -> (N, F + 1)."""
        std = tf.sqrt(tf.math.reduce_variance(features, axis=0) + 1e-8)
        stat = tf.ones_like(features[:, :1]) * tf.reduce_mean(std)
        return tf.concat([features, stat], axis=-1)


@dataclasses.dataclass(frozen=True)
class DiscriminatorInfo:
    """What was built and why; ``mode`` is the mode actually used."""

    requested_mode: str
    mode: str
    backbone: str
    alpha: float | None
    weights: dict[str, str] | None
    reason: str
    backbone_input_size: tuple[int, int]
    params: dict[str, int]
    kind: str = "paper"
    diff_augment: bool = False

    @property
    def is_variant(self) -> bool:
        """A project variant (dcgan, projected or DiffAugment), not the paper's architecture."""
        return self.kind != "paper" or self.diff_augment


def _make_backbone(name: str, alpha: float | None, input_size: tuple[int, int],
                   weights: str | None, pooling: str | None = "avg") -> keras.Model:
    """``keras.applications.<name>(include_top=False, pooling=pooling)`` at the given size."""
    kwargs: dict[str, Any] = {"include_top": False, "pooling": pooling, "weights": weights,
                              "input_shape": (*input_size, 3)}
    if alpha is not None:
        kwargs["alpha"] = alpha
    return getattr(keras.applications, name)(**kwargs)


def _image_input(image_shape: tuple[int, int, int]) -> keras.KerasTensor:
    """The discriminator's input layer; only 1 or 3 channels."""
    height, width, channels = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got shape {image_shape}")
    return keras.Input((height, width, channels), name="images")


def _backbone_input_size(image_shape: tuple[int, int, int], name: str,
                         input_size: int | None) -> tuple[int, int]:
    """``input_size`` squared, or the image size raised to the backbone's minimum."""
    minimum = BACKBONES[name].min_size
    if input_size is None:
        return max(int(image_shape[0]), minimum), max(int(image_shape[1]), minimum)
    if input_size < minimum:
        raise ValueError(f"{name} needs inputs of at least {minimum} px, got input_size={input_size}")
    return input_size, input_size


def paper_head(n_features: int, minibatch_std: bool) -> keras.Model:
    """The paper's head, features (N, F) -> logits (N, 1): [MinibatchStdDev,] BN, Dense(1).

    float32 also under a mixed precision policy (so are the logits).
    """
    feat_in = keras.Input((n_features,), name="pooled_features")
    h = MinibatchStdDev(name="minibatch_std", dtype="float32")(feat_in) if minibatch_std else feat_in
    h = keras.layers.BatchNormalization(center=False, scale=False, name="head_bn", dtype="float32")(h)
    logits = keras.layers.Dense(1, use_bias=False, name="logit", dtype="float32")(h)
    return keras.Model(feat_in, logits, name="head")


def _assemble(image_shape: tuple[int, int, int], name: str, alpha: float | None,
              frozen: bool, weights: str | None, head_minibatch_std: bool,
              input_size: int | None = None) -> keras.Model:
    """Build images -> preprocessing -> backbone -> "head" sub-model -> logits."""
    size = _backbone_input_size(image_shape, name, input_size)
    images = _image_input(image_shape)
    x = ToBackboneInput(name, size, name="to_backbone_input")(images)
    backbone = _make_backbone(name, alpha, size, weights)
    if frozen:
        backbone.trainable = False
        feats = backbone(x, training=False)
    else:
        feats = backbone(x)

    head = paper_head(feats.shape[-1], head_minibatch_std)
    return keras.Model(images, head(feats), name=f"discriminator_{name}")


def _assemble_dcgan(image_shape: tuple[int, int, int], head_minibatch_std: bool) -> keras.Model:
    """images -> "dcgan_trunk" (stride-2 4x4 convs + LeakyReLU to <= 4x4, flattened) -> paper head."""
    images = _image_input(image_shape)
    trunk_in = keras.Input(images.shape[1:], name="trunk_images")
    h = trunk_in
    index = 0
    while h.shape[1] > 4 or h.shape[2] > 4:
        filters = DCGAN_FILTERS[min(index, len(DCGAN_FILTERS) - 1)]
        index += 1
        h = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv{index}")(h)
        h = keras.layers.LeakyReLU(LEAK, name=f"lrelu{index}")(h)
    trunk = keras.Model(trunk_in, keras.layers.Flatten(name="flatten")(h), name="dcgan_trunk")
    feats = trunk(images)
    return keras.Model(images, paper_head(feats.shape[-1], head_minibatch_std)(feats),
                       name="discriminator_dcgan")


def stage_ends(backbone: keras.Model, count: int = PROJECTED_TAPS) -> list[str]:
    """Names of the last layers of the backbone's last ``count`` resolution stages.

    Walks the layers in order (zero-padding layers skipped) and ends a stage wherever the
    spatial size of the output shrinks; the final layer ends the last stage.
    """
    ends: list[str] = []
    previous: tuple[str, int] | None = None
    for layer in backbone.layers:
        shape = layer.output_shape
        if isinstance(layer, keras.layers.ZeroPadding2D) or not isinstance(shape, tuple) or len(shape) != 4:
            continue
        if previous is not None and shape[1] < previous[1]:
            ends.append(previous[0])
        previous = (layer.name, shape[1])
    ends.append(previous[0])
    return ends[-count:]


def _projected_scale(features: keras.KerasTensor, index: int, seed: int) -> keras.KerasTensor:
    """Fixed random 1x1 mixing, then a trainable conv head down to one logit (N, 1)."""
    h = keras.layers.Conv2D(PROJECTED_CHANNELS, 1, use_bias=False, trainable=False,
                            kernel_initializer=keras.initializers.HeNormal(seed=seed + index),
                            name=f"mix{index}")(features)
    block = 0
    while block == 0 or h.shape[1] > 4:
        block += 1
        stride = 2 if h.shape[1] > 4 else 1
        h = keras.layers.Conv2D(PROJECTED_CHANNELS, 4 if stride == 2 else 3, strides=stride, padding="same",
                                use_bias=False, name=f"scale{index}_conv{block}")(h)
        h = keras.layers.BatchNormalization(name=f"scale{index}_bn{block}")(h)
        h = keras.layers.LeakyReLU(LEAK, name=f"scale{index}_lrelu{block}")(h)
    logit = keras.layers.Conv2D(1, tuple(h.shape[1:3]), name=f"scale{index}_logit", dtype="float32")(h)
    return keras.layers.Flatten(name=f"scale{index}_flatten", dtype="float32")(logit)


def _assemble_projected(image_shape: tuple[int, int, int], name: str, alpha: float | None,
                        weights: str | None, input_size: int | None, seed: int) -> keras.Model:
    """images -> preprocessing -> frozen backbone taps -> per-scale random mixing + head -> mean logit."""
    size = _backbone_input_size(image_shape, name, input_size)
    images = _image_input(image_shape)
    x = ToBackboneInput(name, size, name="to_backbone_input")(images)
    backbone = _make_backbone(name, alpha, size, weights, pooling=None)
    taps = keras.Model(backbone.input, [backbone.get_layer(n).output for n in stage_ends(backbone)],
                       name=f"{name}_taps")
    taps.trainable = False
    logits = [_projected_scale(f, i, seed) for i, f in enumerate(taps(x, training=False))]
    mean = keras.layers.Average(name="mean_logit", dtype="float32")(logits) if len(logits) > 1 else logits[0]
    return keras.Model(images, mean, name=f"discriminator_projected_{name}")


def with_diff_augment(model: keras.Model, seed: int = 0) -> keras.Model:
    """``D(T(x))``: ``model`` behind a :class:`DiffAugment` layer (the full policy)."""
    images = keras.Input(model.input_shape[1:], name="images")
    augmented = DiffAugment(seed=seed, name="diff_augment", dtype="float32")(images)
    return keras.Model(images, model(augmented), name=f"{model.name}_diffaugment")


def get_backbone(model: keras.Model) -> keras.Model:
    """The Keras Applications backbone inside a discriminator."""
    return next(layer for layer in model.layers
                if isinstance(layer, keras.Model) and layer.name != "head")


def split_discriminator(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Return (features_model, head_model): features = f(x), logits = head(features, training).

    Both share the discriminator's layers and variables (nothing is copied). In transfer mode
    the backbone inside ``features_model`` always runs in inference mode.
    """
    # Inbound node 0 of the backbone is its call inside the discriminator (``.output`` would
    # be the backbone's internal output, disconnected from the discriminator's input).
    features = keras.Model(model.input, get_backbone(model).get_output_at(0), name="features")
    return features, model.get_layer("head")


def _check_pretrained_alpha(name: str, alpha: float | None) -> None:
    """ImageNet weights exist only for Keras' fixed MobileNet widths."""
    allowed = {"MobileNet": MOBILENET_ALPHAS, "MobileNetV2": MOBILENET_V2_ALPHAS}.get(name)
    if allowed is not None and alpha not in allowed:
        raise ValueError(f"ImageNet weights for {name} exist only for alpha in {allowed}; "
                         f"got {alpha}. Use mode='scratch' for other widths.")


def build_discriminator(
    image_shape: tuple[int, int, int],
    backbone: str = "Xception",
    mode: str = "transfer",
    weights_path: str | None = None,
    head_minibatch_std: bool = False,
    input_size: int | None = None,
    kind: str = "paper",
    diff_augment: bool = False,
    seed: int = 0,
) -> tuple[keras.Model, DiscriminatorInfo]:
    """Build the discriminator images -> logits (N, 1); see the module docstring for modes and kinds.

    ``input_size`` resizes images to that square size before the backbone (default: the image
    size, raised to the backbone's minimum). ``seed`` seeds the projected variant's random
    mixing and DiffAugment.

    "auto" falls back to scratch only on WeightsUnavailable; a wrong file under the official
    name (WeightsHashMismatch) or a missing ``weights_path`` always raises.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "dcgan":
        model = _assemble_dcgan(image_shape, head_minibatch_std)
        info = _info(model, mode, "scratch", "dcgan", None, None,
                     "dcgan: small convolutional discriminator, random init, fully trainable (no backbone)",
                     tuple(int(v) for v in image_shape[:2]), kind, diff_augment)
        return (with_diff_augment(model, seed) if diff_augment else model), info
    name, alpha = parse_backbone(backbone)
    projected = kind == "projected"
    source = None
    reason = f"scratch requested: random init, {'frozen (projected)' if projected else 'fully trainable'} backbone"
    if mode in ("transfer", "auto"):
        _check_pretrained_alpha(name, alpha)
        try:
            source = resolve_imagenet_weights(name, alpha, user_path=weights_path)
            reason = (f"{mode}: frozen ImageNet {backbone} from {source.origin} "
                      f"({source.path}, sha256 {source.sha256})")
        except WeightsUnavailable as exc:
            if mode == "transfer":
                raise
            fallback = "random and frozen (projected)" if projected else "trained from scratch (random init, trainable)"
            reason = (f"auto: ImageNet weights unavailable, so the backbone is {fallback} "
                      f"instead of the paper's frozen transfer backbone. {exc}")
            LOGGER.warning("!!! DISCRIMINATOR FALLBACK TO SCRATCH (%s) !!! %s", backbone, reason)
    weights = source.path if source else None
    if projected:
        model = _assemble_projected(image_shape, name, alpha, weights, input_size, seed)
    else:
        model = _assemble(image_shape, name, alpha, frozen=source is not None, weights=weights,
                          head_minibatch_std=head_minibatch_std, input_size=input_size)
    info = _info(model, mode, "transfer" if source else "scratch", name, alpha,
                 dataclasses.asdict(source) if source else None, reason,
                 model.get_layer("to_backbone_input").target_size, kind, diff_augment)
    return (with_diff_augment(model, seed) if diff_augment else model), info


def build_transfer_architecture(
    image_shape: tuple[int, int, int],
    backbone: str = "Xception",
    head_minibatch_std: bool = False,
) -> tuple[keras.Model, DiscriminatorInfo]:
    """The transfer-mode architecture (frozen backbone) with RANDOM weights.

    For parameter counting and tests only, never for training: ``info.mode`` is
    "frozen_random".
    """
    name, alpha = parse_backbone(backbone)
    model = _assemble(image_shape, name, alpha, frozen=True, weights=None,
                      head_minibatch_std=head_minibatch_std)
    return model, _info(model, "frozen_random", "frozen_random", name, alpha, None,
                        "architecture only: random weights, frozen as in transfer mode",
                        model.get_layer("to_backbone_input").target_size)


def _info(model: keras.Model, requested: str, used: str, name: str, alpha: float | None,
          weights: dict[str, str] | None, reason: str, size: tuple[int, int],
          kind: str = "paper", diff_augment: bool = False) -> DiscriminatorInfo:
    """Collect a DiscriminatorInfo for a built model (DiffAugment adds no parameters)."""
    return DiscriminatorInfo(requested, used, name, alpha, weights, reason, tuple(size),
                             parameter_counts(model), kind, diff_augment)


@functools.lru_cache(maxsize=1)
def _measured_backbone_params() -> tuple[tuple[int, int], ...]:
    """(with top, without top) parameter counts of every backbone, measured once (~13 s).

    Each model is built once with its top; the no-top count leaves out the classifier layer
    ("predictions", or "conv_preds" for MobileNet), the only weights the top adds.
    """
    counts = []
    for spec in BACKBONES.values():
        model = getattr(keras.applications, spec.name)(include_top=True, weights=None)
        top = sum(layer.count_params() for layer in model.layers
                  if layer.name in ("predictions", "conv_preds"))
        counts.append((model.count_params(), model.count_params() - top))
    return tuple(counts)


def backbone_table() -> list[dict[str, Any]]:
    """The paper's Table 2 beside measured Keras parameter counts (alpha 1.0 for MobileNets)."""
    return [
        {
            "name": spec.name,
            "paper_size_mb": spec.paper_size_mb,
            "paper_top1": spec.paper_top1,
            "paper_top5": spec.paper_top5,  # printed "top-3" in the paper
            "paper_params": spec.paper_params,
            "measured_params_with_top": with_top,
            "measured_params_no_top": no_top,
            "min_input_size": spec.min_size,
        }
        for spec, (with_top, no_top) in zip(BACKBONES.values(), _measured_backbone_params())
    ]


def discriminator_param_table(
    image_shape: tuple[int, int, int] = (256, 256, 3),
    backbone: str = "Xception",
    head_minibatch_std: bool = False,
) -> list[dict[str, Any]]:
    """Our transfer-mode parameter counts beside Table 3 (paper figures: plain Xception only)."""
    _, info = build_transfer_architecture(image_shape, backbone, head_minibatch_std)
    paper_applies = backbone == "Xception" and not head_minibatch_std
    return compare_counts(info.params, PAPER_D_PARAMS if paper_applies else None)
