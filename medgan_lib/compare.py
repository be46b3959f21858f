"""Discriminator variants at an equal budget: train each, evaluate it offline, tabulate.

    MEDGAN_WEIGHTS_DIR=/path/to/weights python -m medgan_lib.compare --out-dir runs/variants --epochs 100

Every variant is the ``--preset`` (default ``cpu``) configuration with ONLY the discriminator
changed: same generator, data, optimisers, batch size, seed and number of epochs (so the same
number of G and D updates); wall time is reported beside it. The speed options of the training
step (``TRAINING``) are pinned to the values the README's table was measured with, so the table
does not move when a preset's speed choices change. Runs go one after the other into
``OUT/<variant>/`` (resumable, like any run), each is evaluated at its last epoch with
:func:`medgan_lib.evaluation.evaluate_run` against the preset's held-out images (on the
phantom: the phantom of the next seed; weight-free metrics, ``n`` images, fixed seed), and
``OUT/results.json`` and ``OUT/results.md`` get the table. The reference row is the training
images against the same held-out images at the same n: the metrics' floor at this sample size
(what a generator reproducing the training distribution would score).

The transfer variants need the MobileNet alpha 0.25 ImageNet file (``MEDGAN_WEIGHTS_DIR``); they
use ``d_mode="transfer"`` and so stop with an error instead of silently training from scratch.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from .config import PRESETS, Config, preset
from .evaluation import evaluate_run
from .rundir import history_path, read_history, read_provenance
from .runs import train
from .tables import markdown_table as _markdown_table

VARIANTS: dict[str, dict[str, Any]] = {
    "paper-transfer": {"discriminator": "paper", "d_mode": "transfer"},
    "paper-scratch": {"discriminator": "paper", "d_mode": "scratch"},
    "dcgan": {"discriminator": "dcgan"},
    "projected": {"discriminator": "projected", "d_mode": "transfer"},
    "projected-diffaugment": {"discriminator": "projected", "d_mode": "transfer", "diff_augment": True},
}
TRAINING = {"update_order": "simultaneous", "mixed_precision": True}
REFERENCE = "reference: training vs held-out images"
RUN_FIELDS = ("d_trainable", "d_frozen", "d_mode", "seconds_per_epoch", "d_loss", "g_loss")  # None for the reference
COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("variant", lambda r: r["variant"]),
    ("D trainable / frozen params", lambda r: f"{r['d_trainable']:,} / {r['d_frozen']:,}"),
    ("s / epoch", lambda r: f"{r['seconds_per_epoch']:.1f}"),
    ("SWD x1e3 (lower)", lambda r: f"{r['swd']:.1f}"),
    ("MS-SSIM fake / real", lambda r: f"{r['ms_ssim_fake']:.3f} / {r['ms_ssim_real']:.3f}"),
    ("precision", lambda r: f"{r['precision']:.3f}"),
    ("recall", lambda r: f"{r['recall']:.3f}"),
    ("memorised", lambda r: f"{r['memorisation_rate']:.3f}"),
    ("final D / G loss", lambda r: f"{r['d_loss']:.3f} / {r['g_loss']:.3f}"),
)


def variant_config(name: str, base: str, epochs: int) -> Config:
    """The ``base`` preset with the variant's discriminator, ``epochs`` epochs and ``TRAINING``."""
    return preset(base).replace(epochs=epochs, **TRAINING, **VARIANTS[name])


def _row(name: str, run_dir: Path, metrics_row: dict[str, Any]) -> dict[str, Any]:
    """One result row: the evaluation numbers plus the run's D size, time and last losses."""
    provenance = read_provenance(run_dir)
    params = provenance["discriminator"]["params"]
    history = read_history(history_path(run_dir))
    return {
        "variant": name, **metrics_row,
        "d_trainable": params["trainable"], "d_frozen": params["non_trainable"],
        "d_mode": provenance["discriminator"]["mode"],
        "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history),
        "d_loss": history[-1]["d_loss"], "g_loss": history[-1]["g_loss"],
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results as a markdown table (one row per variant, the reference last; "-": not applicable)."""
    return _markdown_table(rows, COLUMNS)


def compare(out_dir: str | Path, epochs: int, variants: list[str], base: str = "cpu", n: int = 512,
            seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Train (or resume) and evaluate every variant in turn; write results.json and results.md."""
    out_dir = Path(out_dir)
    rows = []
    for name in variants:
        run_dir = out_dir / name
        logging.getLogger("medgan").info("variant %s -> %s", name, run_dir)
        train(variant_config(name, base, epochs), run_dir, progress=progress)
        result = evaluate_run(run_dir, epochs=[epochs], n=n, seed=seed, inception=False, progress=False)
        rows.append(_row(name, run_dir, result["per_epoch"][-1]))
    if result["reference"]:  # the same for every variant: same data, split and seed
        rows.append({**result["reference"]["row"], "variant": REFERENCE, **dict.fromkeys(RUN_FIELDS)})
    n_real, n_fake = rows[0]["n_real"], rows[0]["n_fake"]
    command = (f"python -m medgan_lib.compare --out-dir {out_dir} --epochs {epochs} --preset {base} --n {n} "
               f"--seed {seed} --variants {','.join(variants)}")
    notes = (f"Preset {base} with {TRAINING}, {epochs} epochs each, only the discriminator differs; "
             f"metrics at epoch {epochs} "
             f"on {n_fake} generated vs {n_real} real images: {result['real']['set']}, {result['real']['source']} "
             f"(seed {seed}); {' '.join(result['warnings'])} SWD on Laplacian-pyramid patches, "
             "MS-SSIM lower = more diverse (compare with real), precision/recall on 16x16 standardised pixels "
             "(k = 3), memorised = share of generated images with Pearson r >= 0.95 to a training image "
             "(reference row: training images with r >= 0.95 to a held-out image). "
             "No ImageNet Inception features offline, so no FID/KID.")
    table = markdown_table(rows)
    (out_dir / "results.json").write_text(json.dumps({"command": command, "notes": notes, "rows": rows}, indent=2))
    (out_dir / "results.md").write_text(f"{table}\n\n{notes}\n\n```bash\n{command}\n```\n")
    return rows


def main(argv: list[str] | None = None, prog: str = "python -m medgan_lib.compare") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  MEDGAN_WEIGHTS_DIR=../shared/weights {prog} --out-dir runs/variants --epochs 60")
    parser.add_argument("--out-dir", required=True, help="one run directory per variant, and results.md / .json")
    parser.add_argument("--epochs", type=int, required=True, help="the budget: epochs per variant")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="the configuration every variant "
                        "starts from (default: cpu)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {list(VARIANTS)} (default: all)")
    parser.add_argument("--n", type=int, default=512, help="generated and real images per evaluation (default: 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the runs and the evaluation (default: 0)")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = compare(args.out_dir, args.epochs, variants, args.preset, args.n, args.seed)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
