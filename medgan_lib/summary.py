"""Architecture tables as text: paper Table 1 (one upsampling level) and Table 3 (parameter counts)."""
from __future__ import annotations

from .config import Config
from .discriminator import discriminator_param_table
from .generator import build_generator, generator_parameter_table, level_table
from .params import COUNTS, compare_counts
from .tables import format_table

PAPER_GAN_PARAMS = {"total": 37_942_152, "trainable": 17_018_656, "non_trainable": 20_923_496}


def architecture_summary(config: Config) -> str:
    """Tables 1 and 3 for ``config``'s generator and transfer-mode discriminator."""
    generator = build_generator(config)
    image_shape = (config.image_size, config.image_size, config.channels)
    g_rows = generator_parameter_table(config, generator)
    d_rows = discriminator_param_table(image_shape, config.backbone, config.d_minibatch_std)
    paper_d = config.backbone == "Xception" and not config.d_minibatch_std
    gan_counts = {key: g["ours"] + d["ours"] for key, g, d in zip(COUNTS, g_rows, d_rows)}
    parts = [
        f"preset {config.preset}: {config.image_size}x{config.image_size}x{config.channels} images, "
        f"latent {config.latent_dim}, start {config.start_size}x{config.start_size}x{config.start_channels}, "
        f"{config.levels} upsampling levels, width x{config.width}",
        format_table(level_table(generator, 1), "Table 1: upsampling level 1 (read from the model)"),
        format_table(level_table(generator, config.levels), f"Table 1: upsampling level {config.levels} (the last)"),
        format_table(g_rows, "Table 3: generator parameters, ours vs paper"),
        format_table(
            d_rows,
            f"Table 3: discriminator parameters ({config.backbone}, transfer architecture), ours vs paper"
            + ("" if paper_d else " - the paper's figures are for plain Xception only"),
        ),
        format_table(compare_counts(gan_counts, PAPER_GAN_PARAMS if paper_d else None),
                     "Table 3: GAN (generator + discriminator), ours vs paper"),
    ]
    return "\n\n".join(parts)
