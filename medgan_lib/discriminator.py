"""The paper's transfer-learning discriminator (section 2.3, Tables 2 and 3) and the one builder
of every discriminator, :func:`build_discriminator`.

Structure (all layers are plain Keras layers or weight-free custom layers, so the model
checkpoints with ``tf.train.Checkpoint``)::

    images (H, W, C) in [-1, 1], C = 1 or 3
      -> ToBackboneInput ("to_backbone_input"): grey -> 3 channels, bilinear resize up to the
         backbone's minimum input size, [-1, 1] -> [0, 255], the backbone's preprocess_input
      -> backbone sub-model: keras.applications.<Name>(include_top=False, pooling="avg")
      -> "head" sub-model (:func:`medgan_lib.d_layers.paper_head`):
           [MinibatchStdDev]   (project option, off by default; not in the paper)
           BatchNormalization(center=False, scale=False)
           Dense(1, use_bias=False)  -> LOGIT

The paper's Dense has a sigmoid. We return the logit and apply the sigmoid inside the binary
cross-entropy (:mod:`medgan_lib.losses`): mathematically identical, numerically stable.
``split_discriminator`` returns (features_model, head_model) sharing the same variables, so
training code can compute features = features_model(x) and logits = head(features, training).

Modes: "transfer" (the paper: ImageNet weights located by :mod:`medgan_lib.pretrained`,
backbone frozen and always called with ``training=False``, so its BatchNormalization stays in
inference mode), "scratch" (same backbone, random init, fully trainable, BN follows the
``training`` flag), "auto" (transfer if the weights can be found, else scratch with a loud
warning). "transfer" never degrades silently: it raises WeightsUnavailable.

Kinds: ``"paper"`` (the above) and the project variants of :mod:`medgan_lib.d_variants`
(``"dcgan"``: ``backbone`` and ``mode`` are not used; ``"projected"``: ``mode`` picks the frozen
backbone's weights, ``head_minibatch_std`` is not used) and ``"conv"``, the recommended
preset's BatchNorm-free conv net (:mod:`medgan_lib.conv_discriminator`; ``backbone`` and ``mode``
are not used; ``head_minibatch_std`` adds a group standard-deviation channel at 4x4). ``diff_augment=True`` wraps any of
them with :mod:`medgan_lib.augment`'s DiffAugment. Backbones: :mod:`medgan_lib.backbones`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

from tensorflow import keras

from medgan_lib.augment import with_diff_augment
from medgan_lib.backbones import (
    backbone_input_size,
    check_pretrained_alpha,
    get_backbone,
    make_backbone,
    parse_backbone,
)
from medgan_lib.config import AUGMENT_POLICY, D_MODES, DISCRIMINATORS
from medgan_lib.conv_discriminator import build_conv_discriminator
from medgan_lib.d_layers import ToBackboneInput, image_input, paper_head
from medgan_lib.d_variants import build_dcgan, build_projected
from medgan_lib.params import compare_counts, parameter_counts
from medgan_lib.pretrained import WeightsUnavailable, resolve_imagenet_weights

log = logging.getLogger("medgan")

MODES, KINDS = D_MODES, DISCRIMINATORS  # the config's choices of ``d_mode`` and ``discriminator``

# Table 3, discriminator column.
PAPER_D_PARAMS = {"total": 20_867_624, "trainable": 2_048, "non_trainable": 20_865_576}


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


def _assemble(image_shape: tuple[int, int, int], name: str, alpha: float | None,
              frozen: bool, weights: str | None, head_minibatch_std: bool,
              input_size: int | None = None) -> keras.Model:
    """Build images -> preprocessing -> backbone -> "head" sub-model -> logits."""
    size = backbone_input_size(image_shape, name, input_size)
    images = image_input(image_shape)
    x = ToBackboneInput(name, size, name="to_backbone_input")(images)
    backbone = make_backbone(name, alpha, size, weights)
    if frozen:
        backbone.trainable = False
        feats = backbone(x, training=False)
    else:
        feats = backbone(x)

    head = paper_head(feats.shape[-1], head_minibatch_std)
    return keras.Model(images, head(feats), name=f"discriminator_{name}")


def split_discriminator(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Return (features_model, head_model): features = f(x), logits = head(features, training).

    Both share the discriminator's layers and variables (nothing is copied). In transfer mode
    the backbone inside ``features_model`` always runs in inference mode.
    """
    # Inbound node 0 of the backbone is its call inside the discriminator (``.output`` would
    # be the backbone's internal output, disconnected from the discriminator's input).
    features = keras.Model(model.input, get_backbone(model).get_output_at(0), name="features")
    return features, model.get_layer("head")


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
    spectral_norm: bool = False,
    augment_policy: tuple[str, ...] = AUGMENT_POLICY,
) -> tuple[keras.Model, DiscriminatorInfo]:
    """Build the discriminator images -> logits (N, 1); see the module docstring for modes and kinds.

    ``input_size`` resizes images to that square size before the backbone (default: the image
    size, raised to the backbone's minimum). ``seed`` seeds the projected variant's random
    mixing and DiffAugment (whose operations are ``augment_policy``); ``spectral_norm`` applies
    to the "conv" kind only.

    "auto" falls back to scratch only on WeightsUnavailable; a wrong file under the official
    name (WeightsHashMismatch) or a missing ``weights_path`` always raises.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    augment = functools.partial(with_diff_augment, seed=seed, policy=augment_policy)
    if kind in ("dcgan", "conv"):
        if kind == "dcgan":
            model = build_dcgan(image_shape, head_minibatch_std)
            reason = "dcgan: small convolutional discriminator, random init, fully trainable (no backbone)"
        else:
            model = build_conv_discriminator(image_shape, spectral_norm, head_minibatch_std)
            reason = (f"conv: small convolutional discriminator{' with spectral norm' if spectral_norm else ''}, "
                      "no BatchNorm, random init, fully trainable (no backbone, no ImageNet weights)")
        info = _info(model, mode, "scratch", kind, None, None, reason,
                     tuple(int(v) for v in image_shape[:2]), kind, diff_augment)
        return (augment(model) if diff_augment else model), info
    name, alpha = parse_backbone(backbone)
    projected = kind == "projected"
    source = None
    reason = f"scratch requested: random init, {'frozen (projected)' if projected else 'fully trainable'} backbone"
    if mode in ("transfer", "auto"):
        check_pretrained_alpha(name, alpha)
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
            log.warning("!!! DISCRIMINATOR FALLBACK TO SCRATCH (%s) !!! %s", backbone, reason)
    weights = source.path if source else None
    if projected:
        model = build_projected(image_shape, name, alpha, weights, input_size, seed)
    else:
        model = _assemble(image_shape, name, alpha, frozen=source is not None, weights=weights,
                          head_minibatch_std=head_minibatch_std, input_size=input_size)
    info = _info(model, mode, "transfer" if source else "scratch", name, alpha,
                 dataclasses.asdict(source) if source else None, reason,
                 model.get_layer("to_backbone_input").target_size, kind, diff_augment)
    return (augment(model) if diff_augment else model), info


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


def discriminator_param_table(
    image_shape: tuple[int, int, int] = (256, 256, 3),
    backbone: str = "Xception",
    head_minibatch_std: bool = False,
) -> list[dict[str, Any]]:
    """Our transfer-mode parameter counts beside Table 3 (paper figures: plain Xception only)."""
    _, info = build_transfer_architecture(image_shape, backbone, head_minibatch_std)
    paper_applies = backbone == "Xception" and not head_minibatch_std
    return compare_counts(info.params, PAPER_D_PARAMS if paper_applies else None)
