"""The recommended preset against held-out images: its quality per seed, and each component removed in turn.

    python -m medgan_lib.ablation --out-dir runs/ablation --epochs 40 --seeds 0,1
    python -m medgan_lib.ablation --out-dir runs/quality --variants medgan,paper-method --seeds 0,1,2

Every variant is the ``--preset`` (default ``medgan``) with one component removed (``ABLATIONS``;
the weight average's row samples G itself from the unchanged run, ``NO_WEIGHT_AVERAGE``)
or another preset (``OTHER_PRESETS``: ``paper-method`` is the ``cpu`` preset, the paper's method
at CPU scale), with ``--set FIELD=VALUE`` changes applied to every variant (e.g. another
``data``), trained for ``--epochs`` (default: each configuration's own) with every seed
into ``OUT/<variant>/seed_<s>/`` (resumable, like any run). Its last generator snapshot (the
weight average when the run keeps one) makes ``n`` images from fixed latents, compared with
``n`` HELD-OUT real images the run never trained on: the run's own held-out images
(:func:`medgan_lib.real_sets.heldout_images`: for the phantom the phantom of the next seed), or
the images of ``--real SPEC`` (repeatable, concatenated), e.g. a dataset's validation and test
splits. ``n`` is at most the number of held-out images. Memorisation is measured against the
run's own training images.
A reference row per seed compares the training frames with the held-out ones at the same n:
what a perfect generator would score. ``OUT/results.json`` and ``OUT/results.md`` get one row
per run, the reference rows, and the mean and range over seeds per variant.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .checkpoints import trained_generator
from .config import PRESETS, Config, preset
from .config_cli import parse_set
from .evaluation import real_sample, summary_row
from .metrics import evaluate_images, memorisation_rate, nearest_training_neighbours
from .rundir import history_path, read_history, snapshot_generator
from .real_sets import given_images, heldout_images as run_heldout_images, training_images
from .runs import train
from .sampling import generate_images, latent_batch
from .tables import markdown_table

UNCHANGED = "medgan"  # the row of the --preset as it is
NO_WEIGHT_AVERAGE = "no weight average (EMA)"
"""The weight average of G only makes samples; it never feeds back into training (the losses of a
run with and without it are equal to the last digit). So this row samples G itself from the last
checkpoint of the UNCHANGED run: the exact effect of the average, at no training cost."""
ABLATIONS: dict[str, dict[str, Any]] = {
    UNCHANGED: {},
    "no noise injection": {"g_noise_levels": 0},
    NO_WEIGHT_AVERAGE: {},  # G itself from the UNCHANGED run, no second run (see NO_WEIGHT_AVERAGE)
    "no R1 penalty": {"r1_gamma": 0.0},
    "no DiffAugment": {"diff_augment": False},
    "no minibatch std in D": {"d_minibatch_std": False},
    "no mode seeking": {"g_mode_seeking": 0.0},
    "no learning-rate decay": {"lr_decay_fraction": 0.0},
    "float32 (no bf16)": {"mixed_precision": False},
    "simultaneous updates": {"update_order": "simultaneous"},
    "paper generator (cpu preset's)": {"generator": "paper", "g_noise_levels": 0, "width": 8},
}
OTHER_PRESETS = {"paper-method": "cpu"}
REFERENCE = "reference: training vs held-out real frames"
METRICS = ("swd", "precision", "recall", "ms_ssim_fake", "memorised")
COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("variant", lambda r: r["variant"]),
    ("seed", lambda r: str(r["seed"])),
    ("epochs", lambda r: str(r["epochs"])),
    ("train min", lambda r: f"{r['train_minutes']:.1f}"),
    ("SWD x1e3", lambda r: f"{r['swd']:.1f}"),
    ("SWD per level", lambda r: f"{r['swd_per_level'].replace(';', ' / ')} ({r['swd_resolutions'].replace(';', ' / ')} px)"),
    ("precision", lambda r: f"{r['precision']:.3f}"),
    ("recall", lambda r: f"{r['recall']:.3f}"),
    ("MS-SSIM fake / real", lambda r: f"{r['ms_ssim_fake']:.3f} / {r['ms_ssim_real']:.3f}"),
    ("memorised", lambda r: f"{r['memorised']:.3f}"),
)
SUMMARY_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("variant", lambda r: r["variant"]),
    ("seeds", lambda r: r["seeds"]),
    *((f"{name} mean [min, max]", (lambda key: lambda r: r[key])(name)) for name in METRICS),
)


def variant_config(name: str, base: str, seed: int, epochs: int | None,
                   changes: dict[str, Any] | None = None) -> Config:
    """The configuration of variant ``name``: ``base`` with an ablation, or another preset, then
    ``changes`` (the same for every variant), the seed and the budget."""
    config = preset(OTHER_PRESETS[name]) if name in OTHER_PRESETS else preset(base).replace(**ABLATIONS[name])
    return config.replace(**(changes or {}), seed=seed, **({"epochs": epochs} if epochs else {}))


def heldout_images(config: Config, real: list[str] | None = None) -> np.ndarray:
    """The images ``config``'s run is judged against: those of the ``real`` specs (concatenated),
    else the run's own held-out images. Never its training images."""
    if real:
        return np.concatenate([given_images(config, spec).images for spec in real])
    images = run_heldout_images(config)
    if images is None:
        raise ValueError(f"{config.data}: no held-out images (holdout 0); pass --real SPEC or --set holdout=0.2")
    return images.images


def _metrics_row(images: np.ndarray, heldout: np.ndarray, train_images: np.ndarray, seed: int,
                 memorisation_of: np.ndarray | None = None) -> dict[str, Any]:
    """The summary numbers of ``images`` against the held-out frames, and the memorised share of
    ``memorisation_of`` (default ``images``) against the training frames."""
    metrics = evaluate_images(heldout, images, seed=seed, inception=False)
    _, scores = nearest_training_neighbours(images if memorisation_of is None else memorisation_of, train_images)
    return {**summary_row(0, metrics), "memorised": memorisation_rate(scores)}


def run_dir_of(out_dir: Path, name: str, seed: int) -> Path:
    """Where variant ``name`` trains with ``seed``; the NO_WEIGHT_AVERAGE row uses the UNCHANGED run."""
    trained = UNCHANGED if name == NO_WEIGHT_AVERAGE else name
    return out_dir / trained.replace(" ", "_").replace("(", "").replace(")", "") / f"seed_{seed}"


def run_row(name: str, config: Config, run_dir: Path, heldout: np.ndarray) -> dict[str, Any]:
    """Measure the finished run's last snapshot (G itself for NO_WEIGHT_AVERAGE) against the
    held-out images."""
    generator = (trained_generator(run_dir, config) if name == NO_WEIGHT_AVERAGE
                 else snapshot_generator(run_dir, config.epochs, config))
    fake = generate_images(generator, latent_batch(config.seed, len(heldout), config.latent_dim))
    history = read_history(history_path(run_dir))
    row = _metrics_row(fake, heldout, training_images(config).images, config.seed)
    return {**row, "variant": name, "seed": config.seed, "epochs": config.epochs,
            "train_minutes": sum(r["seconds"] for r in history) / 60}


def reference_row(config: Config, heldout: np.ndarray) -> dict[str, Any]:
    """As many training images of ``config`` as held-out images, against them (memorised: held-out
    images this close to a training image)."""
    train_images = training_images(config).images
    row = _metrics_row(real_sample(train_images, len(heldout), config.seed), heldout, train_images, config.seed,
                       heldout)
    return {**row, "variant": REFERENCE, "seed": config.seed, "epochs": "-", "train_minutes": float("nan")}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant: every metric's mean and range over the seeds, as text."""
    out = []
    for variant in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == variant]
        summary = {"variant": variant, "seeds": ",".join(str(row["seed"]) for row in mine)}
        for name in METRICS:
            values = np.array([row[name] for row in mine], float)
            digits = 1 if name == "swd" else 3
            summary[name] = f"{values.mean():.{digits}f} [{values.min():.{digits}f}, {values.max():.{digits}f}]"
        out.append(summary)
    return out


def set_text(value: Any) -> str:
    """The ``--set FIELD=TEXT`` text that parses back to ``value`` (strings as they are, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)


def heldout_sample(config: Config, real: list[str] | None, n: int) -> np.ndarray:
    """At most ``n`` of the held-out images (:func:`heldout_images`), a fixed subset per seed."""
    images = heldout_images(config, real)
    return real_sample(images, min(n, len(images)), config.seed)


def ablate(out_dir: str | Path, variants: list[str], seeds: list[int], base: str = "medgan",
           epochs: int | None = None, n: int = 512, changes: dict[str, Any] | None = None,
           real: list[str] | None = None) -> list[dict[str, Any]]:
    """Train and measure every variant with every seed, then the references; write results.md / .json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, trained = [], set()
    for name in variants:
        for seed in seeds:
            config = variant_config(name, base, seed, epochs, changes)
            if name == NO_WEIGHT_AVERAGE and not config.g_ema_decay:
                raise ValueError(f"preset {config.preset!r} keeps no weight average of G, so {name!r} removes nothing")
            run_dir = run_dir_of(out_dir, name, seed)
            logging.getLogger("medgan").info("%s, seed %d -> %s", name, seed, run_dir)
            if run_dir not in trained:  # the NO_WEIGHT_AVERAGE row shares the UNCHANGED run: train (or resume) it once
                train(config, run_dir, progress=False)
                trained.add(run_dir)
            rows.append(run_row(name, config, run_dir, heldout_sample(config, real, n)))
    for seed in seeds:
        config = variant_config(variants[0], base, seed, epochs, changes)
        rows.append(reference_row(config, heldout_sample(config, real, n)))
    command = (f"python -m medgan_lib.ablation --out-dir {out_dir} --preset {base} --variants "
               f"{shlex.quote(','.join(variants))} --seeds {','.join(map(str, seeds))} --n {n}"
               + (f" --epochs {epochs}" if epochs else "")
               + "".join(f" --set {shlex.quote(f'{k}={set_text(v)}')}" for k, v in (changes or {}).items())
               + "".join(f" --real {shlex.quote(spec)}" for spec in real or ()))
    heldout_text = " + ".join(real) if real else "the run's held-out images (phantom: the next seed's frames)"
    notes = (f"{n} generated images (fixed latents, the last snapshot: the weight average where the run keeps one; "
             "the row without it: G itself from the same run) "
             f"vs as many held-out real images, never trained on: {heldout_text}; memorised = share of generated images "
             "with Pearson r >= 0.95 to one of the run's training frames; SWD on Laplacian-pyramid patches "
             "(x1e3, levels finest first), precision/recall on 16x16 standardised pixels (k = 3), MS-SSIM of random "
             "pairs (compare with the real frames'); train min = the run's summed epoch times.")
    text = (f"{markdown_table(rows, COLUMNS)}\n\n{markdown_table(summarise(rows), SUMMARY_COLUMNS)}\n\n{notes}\n\n"
            f"```bash\n{command}\n```\n")
    (out_dir / "results.json").write_text(json.dumps({"command": command, "notes": notes, "rows": rows}, indent=2))
    (out_dir / "results.md").write_text(text)
    return rows


def main(argv: list[str] | None = None, prog: str = "python -m medgan_lib.ablation") -> int:
    choices = [*ABLATIONS, *OTHER_PRESETS]
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True, help="one run directory per variant and seed, and results.md / .json")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="medgan", help="the configuration the "
                        "ablations start from (default: medgan)")
    parser.add_argument("--variants", default=",".join(ABLATIONS), help=f"comma-separated, from {choices} (default: "
                        "every ablation)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated run seeds (default: 0,1)")
    parser.add_argument("--epochs", type=int, default=None, help="the budget per run (default: each configuration's)")
    parser.add_argument("--n", type=int, default=512, help="generated and held-out images per evaluation (default: "
                        "512, at most the held-out images)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a Config change for "
                        "every variant, e.g. --set data=npz:cxr.npz#train --set n_images=null (repeatable)")
    parser.add_argument("--real", action="append", default=None, metavar="SPEC", help="held-out real images "
                        "(data spec, repeatable: concatenated; default: each run's own held-out images)")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(choices))
    if unknown or not variants:
        parser.error(f"unknown variants {unknown}; choose from {choices}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    changes = dict(parse_set(item) for item in args.set)
    rows = ablate(args.out_dir, variants, seeds, args.preset, args.epochs, args.n, changes, args.real)
    print(markdown_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
