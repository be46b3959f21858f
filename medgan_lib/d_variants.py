"""Project discriminator variants beside the paper's: DCGAN and Projected GAN.

Both map images in [-1, 1] to logits (N, 1) and work with :class:`medgan_lib.gan.GAN` unchanged.

* ``"dcgan"``: the baseline every GAN user knows, a small trainable convolutional network
  (Radford et al. 2016): 4x4 stride-2 convolutions with LeakyReLU(0.2), filters 64, 128, 256,
  256, ... until the maps are at most 4x4, no normalisation inside and no spectral norm; then
  the flattened maps go into the paper's head, so the concatenated-batch rule of the head's
  BatchNormalization applies unchanged.
* ``"projected"``: Projected GAN (Sauer et al. 2021). The backbone is ALWAYS frozen (inference
  mode) and tapped at the ends of its last four resolution stages (MobileNet at 64 px: 16, 8,
  4 and 2 px maps); each tap goes through a fixed random 1x1 channel mixing (non-trainable,
  the paper's CCM; its cross-scale mixing is left out) to 64 channels and a small trainable
  head: 4x4 stride-2 conv + BN + LeakyReLU(0.2) blocks down to at most 4x4 (one 3x3 block for
  maps already that small), then a convolution over the whole map -> one logit per scale. The
  scales' logits are averaged. The heads' BatchNormalization also needs real and generated
  images in one batch.
"""
from __future__ import annotations

from tensorflow import keras

from medgan_lib.backbones import backbone_input_size, make_backbone
from medgan_lib.d_layers import ToBackboneInput, image_input, paper_head

LEAK = 0.2  # LeakyReLU slope (DCGAN)
DCGAN_FILTERS = (64, 128, 256)  # per stride-2 convolution; the last repeats
PROJECTED_TAPS = 4  # backbone depths tapped by the projected discriminator
PROJECTED_CHANNELS = 64  # random 1x1 mixing output and head width per scale


def build_dcgan(image_shape: tuple[int, int, int], head_minibatch_std: bool) -> keras.Model:
    """images -> "dcgan_trunk" (stride-2 4x4 convs + LeakyReLU to <= 4x4, flattened) -> paper head."""
    images = image_input(image_shape, any_channels=True)  # a labelled GAN: image + landmark heatmaps
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


def build_projected(image_shape: tuple[int, int, int], name: str, alpha: float | None,
                        weights: str | None, input_size: int | None, seed: int) -> keras.Model:
    """images -> preprocessing -> frozen backbone taps -> per-scale random mixing + head -> mean logit."""
    size = backbone_input_size(image_shape, name, input_size)
    images = image_input(image_shape)
    x = ToBackboneInput(name, size, name="to_backbone_input")(images)
    backbone = make_backbone(name, alpha, size, weights, pooling=None)
    taps = keras.Model(backbone.input, [backbone.get_layer(n).output for n in stage_ends(backbone)],
                       name=f"{name}_taps")
    taps.trainable = False
    logits = [_projected_scale(f, i, seed) for i, f in enumerate(taps(x, training=False))]
    mean = keras.layers.Average(name="mean_logit", dtype="float32")(logits) if len(logits) > 1 else logits[0]
    return keras.Model(images, mean, name=f"discriminator_projected_{name}")


