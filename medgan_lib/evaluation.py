"""Evaluate a run's generator snapshots with the offline metrics of :mod:`medgan_lib.metrics`.

``python -m medgan_lib evaluate --run-dir R`` (or :func:`evaluate_run`) loads the run's
configuration and its held-out real images (:mod:`medgan_lib.real_sets`: images the run never
trained on; or another data spec), and for every requested snapshot epoch loads
``checkpoints/generator/epoch_NNNN.weights.h5``, generates ``n`` images from latent vectors that
depend only on ``seed`` (the same vectors at every epoch), and compares them with ``n`` held-out
images by :func:`medgan_lib.metrics.evaluate_images`. Memorisation is measured against all
training images. The reference is the training images against the same held-out images at the
same n: what a generator that reproduces the training distribution exactly would score. A run
without held-out images is compared with its training images, with a warning. It writes into the
run dir:

* ``metrics.json``: every metric of the last evaluated epoch, sample counts beside each value,
  which real images were used and the reference;
* ``metrics_per_epoch.csv``: one row per epoch (the main numbers and their sample counts);
* ``metrics_per_epoch.json``: the full metrics of every epoch;
* ``tensorboard/evaluation/``: the per-epoch numbers as TensorBoard scalars.

The generator runs in float32 inference mode (also for runs trained in mixed precision).
Everything is deterministic given the seed. Small samples bias the numbers (SWD and KID rise,
precision and recall fall as n shrinks): compare values only at equal n.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .errors import MedganError
from .metrics import evaluate_images, nearest_images
from .pretrained import WeightsUnavailable, resolve_imagenet_weights
from .progress import progress_bar_class
from .random_streams import STREAM_IDS, stream
from .real_sets import NO_HELDOUT, NO_HELDOUT_WARNING, given_images, heldout_images, training_images
from .rundir import (
    config_path,
    generator_snapshot_path,
    load_weights_file,
    read_config,
    snapshot_epochs,
    snapshot_epochs_saved,
    write_atomic,
)
from .sampling import generate_images, latent_batch
from .tables import csv_text, format_table
from .tensorboard_log import write_evaluation

DEFAULT_MAX_N = 1000
SMALL_SAMPLE_NOTE = (
    "Small-sample bias: SWD, FID and KID estimates rise and precision/recall fall as the sample "
    "shrinks, and two samples of the same distribution do not give 0. Compare values only at "
    "equal sample counts (n_real, n_fake) and settings."
)
CSV_FIELDS = (
    "epoch", "n_real", "n_fake", "swd", "swd_per_level", "swd_resolutions", "swd_patches_per_set",
    "ms_ssim_fake", "ms_ssim_real", "ms_ssim_pairs", "precision", "recall", "pr_k", "memorisation_rate", "memorisation_threshold",
    "max_nn_correlation", "median_nn_correlation", "fid", "kid", "kid_subset_size",
)


REFERENCE = "reference: training images vs the same real images, equal n"
MEMORISATION_NOTE = (
    "memorisation_rate, max/median_nn_correlation: each generated image's nearest TRAINING image (Pearson r, "
    "all training images); nearest_real: its nearest image of the real set compared with."
)
log = logging.getLogger("medgan")


class EvaluationError(MedganError):
    """A run that cannot be evaluated as asked (no run, no snapshots, unknown epochs)."""


def real_sample(images: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` real images: all if ``n >= len(images)``, else a seeded subset in index order."""
    if n >= len(images):
        return images
    keep = np.sort(stream(seed, "real_subset").choice(len(images), n, replace=False))
    return images[keep]


def summary_row(epoch: int | str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The ``metrics_per_epoch.csv`` row of one epoch (FID/KID empty when unavailable; SWD per
    pyramid level, finest first, and the level sizes as ";"-separated text). Memorisation is
    against the training images where measured (``nearest_training``), else against the real set."""
    pr, near = metrics["precision_recall"], metrics.get("nearest_training", metrics["nearest_real"])
    fid, kid = metrics.get("fid", {}), metrics.get("kid", {})
    return {
        "epoch": epoch, "n_real": metrics["n_real"], "n_fake": metrics["n_fake"],
        "swd": metrics["swd"]["value"],
        "swd_per_level": ";".join(f"{v:.2f}" for v in metrics["swd"]["per_level"]),
        "swd_resolutions": ";".join(str(r) for r in metrics["swd"]["resolutions"]),
        "swd_patches_per_set": metrics["swd"]["patches_per_set"],
        "ms_ssim_fake": metrics["ms_ssim_fake"]["value"], "ms_ssim_real": metrics["ms_ssim_real"]["value"],
        "ms_ssim_pairs": metrics["ms_ssim_fake"]["n_pairs"],
        "precision": pr["precision"], "recall": pr["recall"], "pr_k": pr["k"],
        "memorisation_rate": near["memorisation_rate"], "memorisation_threshold": near["threshold"],
        "max_nn_correlation": near["max_correlation"], "median_nn_correlation": near["median_correlation"],
        "fid": fid.get("value", ""), "kid": kid.get("value", ""), "kid_subset_size": kid.get("subset_size", ""),
    }


def _inception_status() -> tuple[bool, str]:
    """Whether InceptionV3 ImageNet weights can be found without a download, and why not."""
    try:
        resolve_imagenet_weights("InceptionV3", None, allow_download=False)
    except WeightsUnavailable as exc:
        return False, str(exc)
    return True, ""


def _epochs_to_evaluate(run_dir: Path, config: Config, epochs: list[int] | None) -> list[int]:
    """The requested snapshot epochs (default: all saved), checked against the saved ones."""
    saved = snapshot_epochs_saved(run_dir)
    if not saved:
        raise EvaluationError(
            f"{run_dir} has no generator snapshots (checkpoints/generator/epoch_NNNN.weights.h5); training "
            f"writes them after epochs {snapshot_epochs(config.epochs)}: train or resume the run first")
    if epochs is None:
        return saved
    missing = sorted(set(epochs) - set(saved))
    if missing:
        raise EvaluationError(f"{run_dir} has no generator snapshot for epochs {missing}; saved: {saved}")
    return sorted(set(epochs))


def evaluate_run(
    run_dir: str | os.PathLike,
    real: str | None = None,
    epochs: list[int] | None = None,
    n: int | None = None,
    seed: int = 0,
    inception: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the run's generator snapshots and write the metrics files (see module docstring).

    ``real``: data spec of the real images (default: the run's held-out images, see
    :mod:`medgan_lib.real_sets`; without any, the training images and a warning); ``epochs``:
    snapshot epochs (default: all saved); ``n``: generated images per epoch and real images
    (default: all real images, at most 1000; fewer real ones than ``n`` are all used);
    ``inception``: FID/KID too when InceptionV3 weights are found locally. Returns the content
    of ``metrics.json`` with the per-epoch rows under ``"per_epoch"`` and the reference row under
    ``"reference"`` (None when the real images are the training images).
    """
    from .generator import build_generator

    run_dir = Path(run_dir)
    if not config_path(run_dir).is_file():
        raise EvaluationError(f"no training run in {run_dir} (config.json missing)")
    config = read_config(run_dir)
    chosen = _epochs_to_evaluate(run_dir, config, epochs)
    training = training_images(config)
    warnings = []
    if real:
        images, real_set = given_images(config, real), f"given: {real}"
    else:
        images, real_set = heldout_images(config), "held-out images (never trained on)"
        if images is None:
            images, real_set = training, NO_HELDOUT
            warnings.append(NO_HELDOUT_WARNING)
            log.warning(NO_HELDOUT_WARNING)
    n = min(len(images.images), DEFAULT_MAX_N) if n is None else n
    if n < 4:
        raise EvaluationError(f"n must be >= 4 (k-NN precision/recall with k = 3), got {n}")
    real_images = real_sample(images.images, n, seed)
    reference = None if images is training else reference_metrics(training.images, real_images, seed)
    z = latent_batch(seed, n, config.latent_dim)
    use_inception, inception_reason = _inception_status() if inception else (False, "disabled")

    generator = build_generator(config)
    per_epoch: dict[int, dict[str, Any]] = {}
    for epoch in progress_bar_class()(chosen, desc="evaluate", unit="epoch", disable=not progress):
        load_weights_file(generator, generator_snapshot_path(run_dir, epoch))
        fake = generate_images(generator, z)
        metrics = evaluate_images(real_images, fake, seed=seed, inception=use_inception)
        metrics["nearest_training"] = nearest_images(fake, training.images)
        if not use_inception:
            metrics["inception"] = {"available": False, "reason": inception_reason}
        per_epoch[epoch] = metrics

    rows = [summary_row(epoch, metrics) for epoch, metrics in per_epoch.items()]
    final = chosen[-1]
    record = {
        "run_dir": str(run_dir.resolve()),
        "epoch": final,
        "seed": seed,
        "real": {"set": real_set, "spec": images.spec, "source": images.source, "split": images.split,
                 "fingerprint": images.fingerprint, "n_available": len(images.images), "n_used": len(real_images)},
        "training": {"fingerprint": training.fingerprint, "n": len(training.images)},
        "warnings": warnings,
        "reference": reference and {"description": REFERENCE, "row": summary_row("reference", reference),
                                    "metrics": reference},
        "n_fake": n,
        "latent": f"numpy default_rng([{seed}, {STREAM_IDS['evaluation_latents']}]) standard normal, the same {n} vectors at every epoch",
        "generator": "float32, inference mode",
        "notes": [SMALL_SAMPLE_NOTE, MEMORISATION_NOTE],
        "metrics": per_epoch[final],
    }
    write_atomic(run_dir / "metrics.json", json.dumps(record, indent=2))
    write_atomic(run_dir / "metrics_per_epoch.csv", csv_text(rows, CSV_FIELDS))
    write_evaluation(run_dir, rows)
    write_atomic(run_dir / "metrics_per_epoch.json", json.dumps(
        {**{k: v for k, v in record.items() if k not in ("epoch", "metrics")},
         "epochs": chosen, "rows": rows, "metrics": {str(e): m for e, m in per_epoch.items()}}, indent=2))
    return {**record, "per_epoch": rows}


def reference_metrics(training: np.ndarray, real: np.ndarray, seed: int) -> dict[str, Any]:
    """Training images against the real images at equal n (as many as both have; weight-free).

    Its memorisation numbers are the training images' nearest real images: a held-out image that
    nearly duplicates a training image shows up there.
    """
    n = min(len(training), len(real))
    return evaluate_images(real_sample(real, n, seed), real_sample(training, n, seed), seed=seed, inception=False)


def format_rows(rows: list[dict[str, Any]], reference: dict[str, Any] | None = None,
                title: str = "quality per snapshot epoch") -> str:
    """The main per-epoch numbers as a text table for the terminal, the reference row (``summary_row``
    of :func:`reference_metrics`) last if given."""
    rows = rows + ([reference] if reference else [])
    sizes = rows[0]["swd_resolutions"].replace(";", " / ")
    table = [{
        "epoch": r["epoch"], "n_real": r["n_real"], "n_fake": r["n_fake"], "SWD x1e3": f"{r['swd']:.1f}",
        "MS-SSIM fake / real": f"{r['ms_ssim_fake']:.3f} / {r['ms_ssim_real']:.3f}",
        "precision": f"{r['precision']:.3f}", "recall": f"{r['recall']:.3f}",
        "memorised": f"{r['memorisation_rate']:.3f}",
        f"SWD per level ({sizes} px)": " / ".join(f"{float(v):.1f}" for v in r["swd_per_level"].split(";")),
    } for r in rows]
    return format_table(table, title)


def comparison_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The last epoch's row of each labelled :func:`evaluate_run` result (its ``epoch`` the label and
    the epoch), then each distinct reference row (one when the runs share their real images)."""
    rows, references = [], {}
    for label, result in results.items():
        last = result["per_epoch"][-1]
        rows.append({**last, "epoch": f"{label}, epoch {last['epoch']}"})
        if result["reference"]:
            references.setdefault(result["real"]["fingerprint"], (label, result["reference"]["row"]))
    for label, row in references.values():
        name = "real vs real reference" + (f" ({label}'s real images)" if len(references) > 1 else "")
        rows.append({**row, "epoch": name})
    return rows


def epoch_trend(rows: list[dict[str, Any]]) -> str:
    """Whether quality rises to the last epoch: SWD (mean and coarsest level), precision / recall and
    MS-SSIM at the first, last and best epochs of :func:`evaluate_run`'s per-epoch rows."""
    best = min(rows, key=lambda row: row["swd"])
    first, last = rows[0], rows[-1]
    verdict = "the last epoch is the best by SWD" if best is last else (
        f"SWD is lowest at epoch {best['epoch']}, not at the last epoch {last['epoch']}")
    coarse = [float(row["swd_per_level"].split(";")[-1]) for row in rows]
    return "\n".join([
        f"SWD x1e3: epoch {first['epoch']}: {first['swd']:.1f}, epoch {last['epoch']}: {last['swd']:.1f}, "
        f"lowest at epoch {best['epoch']}: {best['swd']:.1f}",
        f"precision / recall at epoch {last['epoch']}: {last['precision']:.3f} / {last['recall']:.3f} "
        f"(epoch {first['epoch']}: {first['precision']:.3f} / {first['recall']:.3f})",
        f"{verdict}; MS-SSIM generated {last['ms_ssim_fake']:.3f} vs real {last['ms_ssim_real']:.3f}",
        f"coarsest SWD level ({rows[0]['swd_resolutions'].split(';')[-1]} px): epoch {first['epoch']}: "
        f"{coarse[0]:.1f}, epoch {last['epoch']}: {coarse[-1]:.1f}, lowest at epoch "
        f"{rows[coarse.index(min(coarse))]['epoch']}",
    ])


def metrics_figure(rows: list[dict[str, Any]], title: str):
    """The per-epoch metrics (``metrics_per_epoch.csv`` rows) against epoch, four panels."""
    from .figures import new_figure

    fig = new_figure(10, 6.5)
    panels = (
        (("swd",), "SWD x1e3, mean and per pyramid level (lower = closer to real)"),
        (("ms_ssim_fake", "ms_ssim_real"), "MS-SSIM of random pairs (lower = more diverse)"),
        (("precision", "recall"), "improved precision / recall (k = 3, 16x16 pixels)"),
        (("memorisation_rate", "max_nn_correlation", "median_nn_correlation"), "nearest real image (Pearson r)"),
    )
    epochs = [row["epoch"] for row in rows]
    axes = fig.subplots(2, 2).ravel()
    levels = [[float(v) for v in row["swd_per_level"].split(";")] for row in rows]
    for level, size in enumerate(rows[0]["swd_resolutions"].split(";")):
        axes[0].plot(epochs, [values[level] for values in levels], linestyle="--", label=f"swd {size} px level")
    for ax, (keys, label) in zip(axes, panels):
        for key in keys:
            ax.plot(epochs, [row[key] for row in rows], marker="o", label=key)
        if keys != ("swd",):
            ax.set_ylim(-0.02, 1.02)  # shares and correlations
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def closest_pairs_figure(fake: np.ndarray, real: np.ndarray, pairs: list[dict[str, Any]], title: str):
    """Generated images (top) above their nearest real images (bottom), with the correlation."""
    from .figures import _show_image, new_figure, to_uint8

    fig = new_figure(1.6 * len(pairs) + 0.6, 3.8)
    axes = fig.subplots(2, len(pairs), squeeze=False)
    fake_tiles, real_tiles = to_uint8(fake), to_uint8(real)
    for j, pair in enumerate(pairs):
        _show_image(axes[0, j], fake_tiles[pair["generated"]])
        _show_image(axes[1, j], real_tiles[pair["training"]])
        axes[1, j].set_xlabel(f"r = {pair['correlation']:.3f}", fontsize=8)
    axes[0, 0].set_ylabel("generated", fontsize=8)
    axes[1, 0].set_ylabel("nearest real", fontsize=8)
    fig.suptitle(title)
    return fig
