"""The paper's eight ImageNet backbones (Table 2): which one, at what input size, with what weights.

A backbone is named as in Keras Applications, MobileNets optionally with their alpha (width
multiplier): ``"Xception"``, ``"MobileNet@0.25"``. :func:`make_backbone` builds
``keras.applications.<Name>(include_top=False)``; :func:`preprocess_fn` is its own
``preprocess_input``; ImageNet weights are located by :mod:`medgan_lib.pretrained`.

Pretrained MobileNet/MobileNetV2 weights exist only for fixed alphas and Keras picks them by
input size (it falls back to the 224 files with a warning for other sizes). The 224 file is
always loaded by path; convolution and BN weights do not depend on the input size, so it loads
at any size >= 32 and Keras emits no warning. NASNetMobile likewise loads at any size.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import tensorflow as tf
from tensorflow import keras

from medgan_lib.config import check_backbone_alpha
from medgan_lib.errors import ConfigError
from medgan_lib.pretrained import MOBILENET_ALPHAS, MOBILENET_V2_ALPHAS


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

def parse_backbone(backbone: str) -> tuple[str, float | None]:
    """Split "MobileNet@0.25" into ("MobileNet", 0.25); an alpha only for the MobileNets (default 1)."""
    name, _, alpha_text = backbone.partition("@")
    if name not in BACKBONES:
        raise ConfigError("backbone", f"must be one of {', '.join(BACKBONES)}; got {name!r}")
    if not alpha_text:
        return name, (1.0 if name in ("MobileNet", "MobileNetV2") else None)
    if name not in ("MobileNet", "MobileNetV2"):
        raise ConfigError("backbone", f"{name} has no alpha (width multiplier) (got {backbone!r})")
    check_backbone_alpha(backbone)
    return name, float(alpha_text)


def preprocess_fn(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The backbone's own ``preprocess_input``."""
    return getattr(keras.applications, BACKBONES[name].module).preprocess_input


def make_backbone(name: str, alpha: float | None, input_size: tuple[int, int],
                   weights: str | None, pooling: str | None = "avg") -> keras.Model:
    """``keras.applications.<name>(include_top=False, pooling=pooling)`` at the given size."""
    kwargs: dict[str, Any] = {"include_top": False, "pooling": pooling, "weights": weights,
                              "input_shape": (*input_size, 3)}
    if alpha is not None:
        kwargs["alpha"] = alpha
    return getattr(keras.applications, name)(**kwargs)


def backbone_input_size(image_shape: tuple[int, int, int], name: str,
                         input_size: int | None) -> tuple[int, int]:
    """``input_size`` squared, or the image size raised to the backbone's minimum."""
    minimum = BACKBONES[name].min_size
    if input_size is None:
        return max(int(image_shape[0]), minimum), max(int(image_shape[1]), minimum)
    if input_size < minimum:
        raise ConfigError("d_input_size", f"must be at least {minimum} px for {name}, got {input_size}")
    return input_size, input_size


def check_pretrained_alpha(name: str, alpha: float | None) -> None:
    """ImageNet weights exist only for Keras' fixed MobileNet alphas."""
    allowed = {"MobileNet": MOBILENET_ALPHAS, "MobileNetV2": MOBILENET_V2_ALPHAS}.get(name)
    if allowed is not None and alpha not in allowed:
        raise ConfigError("backbone", f"{name}: ImageNet weights exist only for alpha in {allowed}; "
                                      f"got {alpha}. Use mode='scratch' for other alphas.")


def get_backbone(model: keras.Model) -> keras.Model:
    """The Keras Applications backbone inside a discriminator."""
    return next(layer for layer in model.layers
                if isinstance(layer, keras.Model) and layer.name != "head")


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
