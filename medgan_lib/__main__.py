"""Command line: ``python -m medgan_lib {train,summary,evaluate} ...``."""
from __future__ import annotations

import argparse
import logging
import sys

from .config import D_MODES, G_LOSSES, PRESETS, UPDATE_ORDERS, Config, preset


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
    train.add_argument("--update-order", choices=UPDATE_ORDERS,
                       help="alternating = the paper's D step then G step; simultaneous = both from one generated batch")
    train.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                       help="bfloat16 mixed precision (losses and output layer in float32); pays off on CPUs "
                            "with AMX/AVX512-BF16 and large models, see README 'Performance'")
    train.add_argument("--deterministic", action="store_true", help="enable TensorFlow op determinism")
    train.add_argument("--run-dir", required=True)

    summary = commands.add_parser("summary", help="print the architecture tables (paper Tables 1 and 3)")
    summary.add_argument("--preset", choices=sorted(PRESETS), default="paper")

    evaluate = commands.add_parser("evaluate", help="offline image-quality metrics of a run's generator snapshots")
    evaluate.add_argument("--run-dir", required=True)
    evaluate.add_argument("--real", help="real images to compare with (data spec; default: the run's training data)")
    evaluate.add_argument("--epochs", type=_epoch_list, help="comma-separated snapshot epochs (default: all saved)")
    evaluate.add_argument("--n", type=int, help="generated and real images per epoch (default: all real, at most 1000)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the latent vectors, real subset and metrics")
    return parser


def _epoch_list(text: str) -> list[int]:
    """"1,100,600" -> [1, 100, 600]."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 1,100,600, got {text!r}") from None


def _evaluate(args: argparse.Namespace) -> int:
    """The ``evaluate`` command: metrics files in the run dir and a table on stdout."""
    from .data import DataError
    from .evaluation import EvaluationError, evaluate_run, format_rows
    from .pretrained import WeightsHashMismatch

    try:
        result = evaluate_run(args.run_dir, args.real, args.epochs, args.n, args.seed)
    except (DataError, EvaluationError, WeightsHashMismatch, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_rows(result["per_epoch"]))
    print(f"wrote metrics.json (epoch {result['epoch']}), metrics_per_epoch.csv and .json in {args.run_dir}")
    return 0


OVERRIDES = ("data", "epochs", "batch_size", "seed", "n_images", "d_mode", "backbone", "g_loss", "update_order",
             "mixed_precision")  # train options that replace the preset's config field of the same name


def train_config(args: argparse.Namespace) -> Config:
    """The preset named by ``args`` with the options given on the command line applied."""
    changes = {field: getattr(args, field) for field in OVERRIDES if getattr(args, field) is not None}
    return preset(args.preset).replace(**changes)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "summary":
        from .summary import architecture_summary

        print(architecture_summary(preset(args.preset)))
        return 0
    config = train_config(args)
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
