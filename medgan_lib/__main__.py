"""Command line: ``medgan {train,summary,evaluate,generate,export,compare,bench} ...``
(or ``python -m medgan_lib ...``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from .config import LOGICAL_CPUS_ENV, PRESETS, STRATEGIES, preset
from .config_cli import OptionError, add_config_options, resolve_config
from .errors import run_command

# Subcommands with their own parser in their module; everything after the name is theirs.
DELEGATED = {"compare": "variants of the discriminator at an equal epoch budget (see `medgan compare --help`)",
             "bench": "training-step speed and quality benchmarks (see `medgan bench --help`)"}
GENERATE_FORMATS = ("png", "png16", "npz", "dicom", "dicom16")

EXAMPLES = {
    "train": "examples:\n"
             "  medgan train --preset cpu --run-dir runs/cpu\n"
             "  medgan train --preset cpu --set discriminator=dcgan --set diff_augment=true --run-dir runs/dcgan\n"
             "  medgan train --config runs/cpu/config.json --epochs 900 --dry-run",
    "summary": "example:\n  medgan summary --preset paper",
    "evaluate": "example:\n  medgan evaluate --run-dir runs/cpu --epochs 1,300,600 --n 512",
    "generate": "examples:\n"
                "  medgan generate --run-dir runs/cpu --n 1000 --out synthetic/cpu_png\n"
                "  medgan generate --run-dir runs/cpu --n 200 --epoch 300 --seed 7 --format dicom --out synthetic/dcm",
    "export": "example:\n  medgan export --run-dir runs/cpu --out exported/cpu\n"
              "  python -c \"import tensorflow as tf; m = tf.saved_model.load('exported/cpu/saved_model'); "
              "print(m.signatures['serving_default'](latents=tf.random.normal([4, 128]))['images'].shape)\"",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: OPTION: problem`` line (exit status 2)."""

    def error(self, message: str):
        message = message.replace("argument ", "", 1) if message.startswith("argument ") else message
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _prog() -> str:
    return "medgan" if os.path.basename(sys.argv[0]) == "medgan" else "python -m medgan_lib"


def _command(commands, name: str, help: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name), allow_abbrev=False,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=_prog(), description=__doc__, allow_abbrev=False,
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="examples:\n  medgan train --preset smoke --run-dir runs/smoke\n"
                           "  medgan generate --run-dir runs/smoke --n 100 --out synthetic/smoke\n"
                           "  medgan train --help")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = _command(commands, "train", "train (or resume) a run")
    add_config_options(train)
    train.add_argument("--run-dir", help="the run directory (created, or resumed when it holds this run); "
                       "required unless --dry-run")
    train.add_argument("--deterministic", action="store_true",
                       help="enable TensorFlow op determinism (slower; exact resume bit for bit) (default: off)")
    train.add_argument("--strategy", choices=STRATEGIES, default="default",
                       help="tf.distribute strategy: default (one device), mirrored (every GPU of this host, or the "
                            "logical CPUs), multiworker (several hosts, TF_CONFIG per worker); README 'Larger than "
                            "one machine' (default: default)")
    train.add_argument("--logical-cpus", type=_positive_int, metavar="N",
                       help=f"split the CPU into N logical devices before TensorFlow starts, for --strategy mirrored "
                            f"without GPUs (or set {LOGICAL_CPUS_ENV}) (default: one device)")
    train.add_argument("--dry-run", action="store_true",
                       help="print the resolved configuration as JSON and exit without touching the run directory")

    summary = _command(commands, "summary", "print the architecture tables (paper Tables 1 and 3)")
    summary.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="(default: paper)")

    evaluate = _command(commands, "evaluate", "offline image-quality metrics of a run's generator snapshots")
    evaluate.add_argument("--run-dir", required=True, help="a training run directory")
    evaluate.add_argument("--real", help="real images to compare with (data spec; default: the run's held-out images: "
                          "the next phantom seed, or the part held out by --holdout at training time)")
    evaluate.add_argument("--epochs", type=_epoch_list, help="comma-separated snapshot epochs (default: all saved)")
    evaluate.add_argument("--n", type=int, help="generated and real images per epoch (default: all real, at most 1000)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the latent vectors, real subset and metrics "
                          "(default: 0)")

    generate = _command(commands, "generate", "write synthetic images from a run's generator snapshot")
    generate.add_argument("--run-dir", required=True, help="a training run directory")
    generate.add_argument("--n", type=_positive_int, required=True, help="number of images")
    generate.add_argument("--out", required=True, help="output directory (must be empty or new, unless --overwrite)")
    generate.add_argument("--epoch", type=int, help="snapshot epoch (default: the last saved)")
    generate.add_argument("--seed", type=int, default=0, help="seed of the latent vectors; image i of seed S is the "
                          "same for any --n and --batch-size (default: 0)")
    generate.add_argument("--format", choices=GENERATE_FORMATS, default="png",
                          help="png (8-bit), png16 (16-bit), npz (float32 in [0, 1] + latents, one file), "
                               "dicom (8-bit Secondary Capture), dicom16 (16-bit) (default: png)")
    generate.add_argument("--batch-size", type=_positive_int, default=64, help="images generated at once (default: 64)")
    generate.add_argument("--overwrite", action="store_true",
                          help="write into a directory that holds files (earlier synthetic_* files and the "
                               "manifest are replaced, other files kept) (default: off)")

    export = _command(commands, "export", "save a generator snapshot as a TensorFlow SavedModel")
    export.add_argument("--run-dir", required=True, help="a training run directory")
    export.add_argument("--out", required=True, help="output directory (must be empty or new, unless --overwrite)")
    export.add_argument("--epoch", type=int, help="snapshot epoch (default: the last saved)")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export there (default: off)")

    for name, text in DELEGATED.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def _positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _epoch_list(text: str) -> list[int]:
    """"1,100,600" -> [1, 100, 600]."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 1,100,600, got {text!r}") from None


def _train(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    if args.dry_run:
        print(config.to_json())
        return 0
    if not args.run_dir:
        raise OptionError("--run-dir", "required (unless --dry-run)")
    from .distribute import configure_logical_cpus
    from .runs import train

    if args.logical_cpus:
        configure_logical_cpus(args.logical_cpus)
    train(config, args.run_dir, deterministic=args.deterministic, strategy=args.strategy)
    return 0


def _summary(args: argparse.Namespace) -> int:
    from .summary import architecture_summary

    print(architecture_summary(preset(args.preset)))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_run, format_rows

    result = evaluate_run(args.run_dir, args.real, args.epochs, args.n, args.seed)
    for warning in result["warnings"]:
        print(warning)
    print(f"real images: {result['real']['set']} - {result['real']['source']}")
    print(format_rows(result["per_epoch"], result["reference"] and result["reference"]["row"]))
    print(f"wrote metrics.json (epoch {result['epoch']}), metrics_per_epoch.csv and .json in {args.run_dir}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .generate import generate_to_directory

    written = generate_to_directory(args.run_dir, args.n, args.out, epoch=args.epoch, seed=args.seed,
                                    file_format=args.format, batch_size=args.batch_size, overwrite=args.overwrite)
    print(f"wrote {written.n} images ({written.file_format}, epoch {written.epoch}, {written.weights}) and "
          f"manifest.csv to {written.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_saved_model

    exported = export_saved_model(args.run_dir, args.out, epoch=args.epoch, overwrite=args.overwrite)
    print(f"wrote the SavedModel of epoch {exported['epoch']} to {exported['saved_model']} "
          f"(README.txt and metadata.json beside it)")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train, "summary": _summary, "evaluate": _evaluate, "generate": _generate, "export": _export,
}


def _delegate(name: str, argv: list[str]) -> int:
    """``medgan compare ...`` / ``medgan bench ...``: the module's own command line."""
    if name == "compare":
        from .compare import main as command
    else:
        from .bench import main as command
    return command(argv, prog=f"{_prog()} {name}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
