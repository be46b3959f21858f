"""Command line: ``python -m medgan_lib {train,summary} ...``."""
from __future__ import annotations

import argparse
import logging
import sys

from .config import D_MODES, G_LOSSES, PRESETS, preset


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m medgan_lib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train (or resume) a run")
    train.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    train.add_argument("--data", help="phantom[:N] | npz:PATH[#split] | folder:PATH | medmnist:NAME[@SIZE]")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--n-images", type=int, help="phantom size, or a cap on a loaded set")
    train.add_argument("--d-mode", choices=D_MODES, help="discriminator mode (transfer = the paper's)")
    train.add_argument("--backbone", help="Xception, ResNet50, ..., MobileNet@0.25, MobileNetV2@0.35")
    train.add_argument("--g-loss", choices=G_LOSSES)
    train.add_argument("--deterministic", action="store_true", help="enable TensorFlow op determinism")
    train.add_argument("--run-dir", required=True)

    summary = commands.add_parser("summary", help="print the architecture tables (paper Tables 1 and 3)")
    summary.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    return parser


OVERRIDES = {"data": "data", "epochs": "epochs", "batch_size": "batch_size", "seed": "seed",
             "n_images": "n_images", "d_mode": "d_mode", "backbone": "backbone", "g_loss": "g_loss"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = preset(args.preset)
    if args.command == "summary":
        from .summary import architecture_summary

        print(architecture_summary(config))
        return 0
    changes = {field: getattr(args, arg) for arg, field in OVERRIDES.items() if getattr(args, arg) is not None}
    config = config.replace(**changes)
    from .data import DataError
    from .pretrained import WeightsHashMismatch, WeightsUnavailable
    from .runs import RunError, TrainingDiverged, train

    try:
        train(config, args.run_dir, deterministic=args.deterministic)
    except (DataError, RunError, TrainingDiverged, WeightsUnavailable, WeightsHashMismatch, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
