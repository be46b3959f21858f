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
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Callable

import tensorflow as tf
from tensorflow import keras

from medgan_lib.params import compare_counts, parameter_counts
from medgan_lib.pretrained import (
    MOBILENET_ALPHAS,
    MOBILENET_V2_ALPHAS,
    WeightsUnavailable,
    resolve_imagenet_weights,
)

LOGGER = logging.getLogger("medgan")

MODES = ("transfer", "scratch", "auto")


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


def _make_backbone(name: str, alpha: float | None, input_size: tuple[int, int],
                   weights: str | None) -> keras.Model:
    """``keras.applications.<name>(include_top=False, pooling="avg")`` at the given size."""
    kwargs: dict[str, Any] = {"include_top": False, "pooling": "avg", "weights": weights,
                              "input_shape": (*input_size, 3)}
    if alpha is not None:
        kwargs["alpha"] = alpha
    return getattr(keras.applications, name)(**kwargs)


def _assemble(image_shape: tuple[int, int, int], name: str, alpha: float | None,
              frozen: bool, weights: str | None, head_minibatch_std: bool,
              input_size: int | None = None) -> keras.Model:
    """Build images -> preprocessing -> backbone -> "head" sub-model -> logits."""
    height, width, channels = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got shape {image_shape}")
    minimum = BACKBONES[name].min_size
    size = (max(height, minimum), max(width, minimum))
    if input_size is not None:
        if input_size < minimum:
            raise ValueError(f"{name} needs inputs of at least {minimum} px, got input_size={input_size}")
        size = (input_size, input_size)

    images = keras.Input((height, width, channels), name="images")
    x = ToBackboneInput(name, size, name="to_backbone_input")(images)
    backbone = _make_backbone(name, alpha, size, weights)
    if frozen:
        backbone.trainable = False
        feats = backbone(x, training=False)
    else:
        feats = backbone(x)

    # The head (hence the logits) is float32 also under a mixed precision policy.
    feat_in = keras.Input((feats.shape[-1],), name="pooled_features")
    h = MinibatchStdDev(name="minibatch_std", dtype="float32")(feat_in) if head_minibatch_std else feat_in
    h = keras.layers.BatchNormalization(center=False, scale=False, name="head_bn", dtype="float32")(h)
    logits = keras.layers.Dense(1, use_bias=False, name="logit", dtype="float32")(h)
    head = keras.Model(feat_in, logits, name="head")
    return keras.Model(images, head(feats), name=f"discriminator_{name}")


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
) -> tuple[keras.Model, DiscriminatorInfo]:
    """Build the discriminator images -> logits (N, 1); see the module docstring for modes.

    ``input_size`` resizes images to that square size before the backbone (default: the image
    size, raised to the backbone's minimum).

    "auto" falls back to scratch only on WeightsUnavailable; a wrong file under the official
    name (WeightsHashMismatch) or a missing ``weights_path`` always raises.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    name, alpha = parse_backbone(backbone)
    source = None
    reason = "scratch requested: random init, fully trainable backbone"
    if mode in ("transfer", "auto"):
        _check_pretrained_alpha(name, alpha)
        try:
            source = resolve_imagenet_weights(name, alpha, user_path=weights_path)
            reason = (f"{mode}: frozen ImageNet {backbone} from {source.origin} "
                      f"({source.path}, sha256 {source.sha256})")
        except WeightsUnavailable as exc:
            if mode == "transfer":
                raise
            reason = (f"auto: ImageNet weights unavailable, so the backbone is trained from "
                      f"scratch (random init, trainable) instead of the paper's frozen "
                      f"transfer backbone. {exc}")
            LOGGER.warning("!!! DISCRIMINATOR FALLBACK TO SCRATCH (%s) !!! %s", backbone, reason)
    model = _assemble(image_shape, name, alpha, frozen=source is not None,
                      weights=source.path if source else None,
                      head_minibatch_std=head_minibatch_std, input_size=input_size)
    return model, _info(model, mode, "transfer" if source else "scratch", name, alpha,
                        dataclasses.asdict(source) if source else None, reason)


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
                        "architecture only: random weights, frozen as in transfer mode")


def _info(model: keras.Model, requested: str, used: str, name: str, alpha: float | None,
          weights: dict[str, str] | None, reason: str) -> DiscriminatorInfo:
    """Collect a DiscriminatorInfo for a built model."""
    size = model.get_layer("to_backbone_input").target_size
    return DiscriminatorInfo(requested, used, name, alpha, weights, reason, size,
                             parameter_counts(model))


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
