"""Do labelled GAN frames help a keypoint tracker? ``python -m medgan_lib.tracking --out-dir DIR``.

For every real-set size ``N_real`` and seed:

1. the real set: the first ``N_real`` phantom frames of that seed with their landmarks (the
   labelled GAN and every tracker see only these);
2. a labelled GAN (``landmark_heatmaps`` on the recommended ``medgan`` preset: resize-convolve
   generator, conv discriminator with R1, DiffAugment, weight average, mode seeking) trained on
   them for about ``gan_steps`` optimiser steps, and ``n_synthetic`` frames drawn from its
   weight average, their landmarks read from the generated heatmap channels;
3. one tracker per arm, each for exactly ``tracker_steps`` optimiser steps:

   * ``real``: the real frames;
   * ``real+synthetic``: real and synthetic frames, the real ones repeated so that they are
     about half of the set (``n_synthetic // N_real`` copies, at least one);
   * ``synthetic``: synthetic frames only (train on synthetic, test on real: TSTR);
   * ``real+augment``: the real frames with flips, shifts and intensity changes;
   * ``real+synthetic-filtered``: as ``real+synthetic`` but only the synthetic frames whose
     labels the ``real`` tracker agrees with (every landmark within ``filter_px`` and the same
     presence; DatasetGAN's disagreement filter with one model);

4. every tracker scored on ``n_test`` phantom frames of another seed (``TEST_SEED``), which no
   GAN or tracker sees (checked: no test frame equals a training frame);
5. label faithfulness: the ``real`` tracker run on the synthetic frames, its landmarks against
   the generated labels.

Writes ``results.csv`` (one row per N_real, seed and arm, plus the mean-position baseline),
``summary.csv`` / ``results.md`` (mean and spread over seeds), ``faithfulness.csv``,
``error_vs_n_real.png`` / ``.pdf`` and ``experiment.json`` (settings, machine, wall time).
GAN and tracker runs live in ``DIR/gan/`` and ``DIR/trackers/`` and resume when rerun.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import MEDGAN, MEDGAN_SMOKE, MINIBATCH_STD_GROUP, Config
from .landmarks import split_labelled_output
from .phantom import make_phantom
from .tracker import LabelledFrames, TrackerConfig, landmark_metrics, mean_position_baseline, predict, train_tracker

ARMS = ("real", "real+synthetic", "synthetic", "real+augment", "real+synthetic-filtered")
TEST_SEED = 1_000_003  # phantom seed of the test frames; training seeds are the experiment's seeds
METRICS = ("error_px", "error_pct", "pck3", "presence_accuracy")
GAN_MIN_IMAGES_PER_EPOCH = 512  # small real sets are repeated to this many images per GAN epoch
SCALES = {"medgan": MEDGAN, "smoke": MEDGAN_SMOKE}  # the labelled GAN's base preset per experiment scale
# The labelled GAN as measured (README): the medgan recipe at constant learning rates; its final
# decay has not been measured with landmark channels yet.
LABELLED_LR_DECAY_FRACTION = 0.0


@dataclass(frozen=True)
class Settings:
    """One experiment: sizes, seeds and budgets."""

    n_real: tuple[int, ...] = (32, 128, 512)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_synthetic: int = 2000
    n_test: int = 1000
    gan_steps: int = 2400
    tracker_steps: int = 600
    arms: tuple[str, ...] = ARMS
    filter_px: float = 3.0
    scale: str = "medgan"  # "medgan": 64 px, the medgan preset; "smoke": 32 px, medgan_smoke, for tests

    def __post_init__(self) -> None:
        unknown = set(self.arms) - set(ARMS)
        if unknown:
            raise ValueError(f"unknown arms {sorted(unknown)}; choose from {ARMS}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {tuple(SCALES)}, got {self.scale!r}")
        if min(self.n_real) < MINIBATCH_STD_GROUP:
            raise ValueError(f"every N_real must be at least {MINIBATCH_STD_GROUP} (the discriminator's "
                             f"minibatch-deviation group), got {min(self.n_real)}")

    @property
    def image_size(self) -> int:
        return self.gan_base.image_size

    @property
    def gan_base(self) -> Config:
        return SCALES[self.scale]

    def gan_config(self, n_real: int, seed: int) -> Config:
        """The labelled GAN for ``n_real`` frames: epochs chosen so that it takes about ``gan_steps``
        steps (batches a multiple of the discriminator's minibatch-deviation group)."""
        batch = min(self.gan_base.batch_size, n_real) // MINIBATCH_STD_GROUP * MINIBATCH_STD_GROUP
        repeats = max(1, min(GAN_MIN_IMAGES_PER_EPOCH // n_real, self.gan_steps * batch // n_real))
        epochs = max(1, round(self.gan_steps / (n_real * repeats // batch)))
        return self.gan_base.replace(landmark_heatmaps=True, n_images=n_real, seed=seed, batch_size=batch,
                                     epochs=epochs, data="phantom", data_repeats=repeats,
                                     lr_decay_fraction=LABELLED_LR_DECAY_FRACTION)

    def tracker_config(self, seed: int, augment: tuple[str, ...] = ()) -> TrackerConfig:
        per_epoch = math.gcd(self.tracker_steps, 100)
        if self.scale == "smoke":
            return TrackerConfig(image_size=self.image_size, base_filters=4, depth=2, batch_size=8,
                                 steps=self.tracker_steps, steps_per_epoch=per_epoch, seed=seed, augment=augment)
        return TrackerConfig(image_size=self.image_size, steps=self.tracker_steps, steps_per_epoch=per_epoch,
                             seed=seed, augment=augment)


def _digests(images: np.ndarray) -> set[str]:
    return {hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images}


def assert_disjoint(test: LabelledFrames, *training: LabelledFrames) -> None:
    """AssertionError if any test frame equals (bit for bit) a frame of any training set."""
    seen = _digests(test.images)
    for frames in training:
        shared = seen & _digests(frames.images)
        if shared:
            raise AssertionError(f"{len(shared)} test frames also appear in a training set")


def real_frames(n: int, size: int, seed: int) -> LabelledFrames:
    """The first ``n`` phantom frames of ``seed`` (the frames a GAN run of that seed trains on)."""
    return LabelledFrames.from_phantom(make_phantom(n, size, seed))


def synthesize(run_dir: Path, config: Config, n: int, seed: int) -> LabelledFrames:
    """``n`` frames and landmarks from the last generator snapshot of a labelled GAN run."""
    from .generate import latent_stream, sampling_snapshot
    from .rundir import snapshot_generator

    generator = snapshot_generator(run_dir, sampling_snapshot(run_dir).epoch, config)
    parts = []
    for _, z in latent_stream(seed, n, config.latent_dim, 128):
        images, xy, present = split_labelled_output(generator(z, training=False), config.channels)
        parts.append(LabelledFrames(images, xy, present))
    return LabelledFrames.concat(parts)


def balanced_mix(real: LabelledFrames, synthetic: LabelledFrames) -> LabelledFrames:
    """Real frames repeated to about the synthetic set's size, followed by the synthetic frames."""
    copies = max(1, len(synthetic) // len(real))
    return LabelledFrames.concat([real] * copies + [synthetic])


def agreement_mask(predicted, synthetic: LabelledFrames, filter_px: float) -> np.ndarray:
    """Synthetic frames whose labels the tracker agrees with: same presence, every present landmark within ``filter_px``."""
    same = (predicted.present == synthetic.present).all(axis=1)
    distance = np.linalg.norm(predicted.xy - synthetic.xy, axis=-1)
    close = np.where(synthetic.present, distance <= filter_px, True).all(axis=1)
    return same & close


def arm_training_set(arm: str, real: LabelledFrames, synthetic: LabelledFrames | None,
                     keep: np.ndarray | None) -> tuple[LabelledFrames, tuple[str, ...]]:
    """The frames and the augmentation of one arm."""
    if arm == "real":
        return real, ()
    if arm == "real+augment":
        return real, ("flip", "shift", "intensity")
    if arm == "synthetic":
        return synthetic, ()
    if arm == "real+synthetic":
        return balanced_mix(real, synthetic), ()
    if arm == "real+synthetic-filtered":
        kept = synthetic.subset(keep) if keep.any() else synthetic.subset(slice(0, 0))
        return (balanced_mix(real, kept) if len(kept) else real), ()
    raise ValueError(f"unknown arm {arm!r}")


def run_experiment(settings: Settings, out_dir: str | os.PathLike, log=print) -> dict:
    """Run every (N_real, seed, arm); write the tables and the figure; returns the record."""
    from .runs import train

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    size = settings.image_size
    test = real_frames(settings.n_test, size, TEST_SEED)
    rows, faithfulness = [], []
    needs_gan = bool(set(settings.arms) - {"real", "real+augment"})
    for n_real in settings.n_real:
        for seed in settings.seeds:
            real = real_frames(n_real, size, seed)
            synthetic, keep = None, None
            if needs_gan:
                config = settings.gan_config(n_real, seed)
                gan_dir = out / "gan" / f"n{n_real}_seed{seed}"
                t = time.perf_counter()
                train(config, gan_dir, progress=False)
                log(f"N_real={n_real} seed={seed}: labelled GAN, {config.epochs} epochs, {time.perf_counter() - t:.0f} s")
                synthetic = synthesize(gan_dir, config, settings.n_synthetic, seed)
            assert_disjoint(test, *(frames for frames in (real, synthetic) if frames is not None))
            baseline = mean_position_baseline(real, test)
            rows.append({"n_real": n_real, "seed": seed, "arm": "mean-position baseline", "n_train": n_real,
                         "steps": 0, **baseline})
            model = None  # one tracker object, re-initialised for every arm (traced once)
            for arm in ("real",) + tuple(a for a in settings.arms if a != "real"):  # "real" first: filter, faithfulness
                frames, augment = arm_training_set(arm, real, synthetic, keep)
                config = settings.tracker_config(seed, augment)
                t = time.perf_counter()
                model = train_tracker(config, frames, out / "trackers" / f"{arm}_n{n_real}_seed{seed}", reuse=model)
                predicted = predict(model, test.images)
                metrics = landmark_metrics(predicted.xy, predicted.present, test)
                rows.append({"n_real": n_real, "seed": seed, "arm": arm, "n_train": len(frames),
                             "steps": config.steps, **metrics})
                log(f"N_real={n_real} seed={seed} {arm}: {metrics['error_px']:.2f} px on {len(test)} test frames "
                    f"({len(frames)} training frames, {config.steps} steps, {time.perf_counter() - t:.0f} s)")
                if arm == "real" and synthetic is not None:
                    on_synthetic = predict(model, synthetic.images)
                    keep = agreement_mask(on_synthetic, synthetic, settings.filter_px)
                    faith = landmark_metrics(on_synthetic.xy, on_synthetic.present, synthetic)
                    faithfulness.append({"n_real": n_real, "seed": seed, "n_synthetic": len(synthetic),
                                         "tracker_vs_label_error_px": faith["error_px"],
                                         "tracker_vs_label_pck3": faith["pck3"],
                                         "presence_agreement": faith["presence_accuracy"],
                                         "kept_by_filter": int(keep.sum()),
                                         "real_tracker_test_error_px": metrics["error_px"]})
            record = {  # the tables are rewritten after every (N_real, seed): partial results survive a stop
                "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()},
                "test_seed": TEST_SEED,
                "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
                "command": " ".join(sys.argv),
                "seconds": round(time.perf_counter() - began, 1),
                "done": [[r["n_real"], r["seed"]] for r in rows if r["arm"] == "mean-position baseline"],
            }
            write_outputs(out, rows, faithfulness, record)
    return record


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of every metric, per (N_real, arm)."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["n_real"], row["arm"]), []).append(row)
    summary = []
    for (n_real, arm), group in groups.items():
        entry = {"n_real": n_real, "arm": arm, "seeds": len(group), "steps": group[0]["steps"]}
        for metric in METRICS:
            values = np.array([r[metric] for r in group], np.float64)
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


def markdown_table(summary: list[dict]) -> str:
    """The summary as a markdown table: mean ± sd over seeds."""
    lines = ["| N_real | arm | seeds | steps | error px | error % width | PCK@3px | presence acc. |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        cells = [f"{s[f'{m}_mean']:.3f} ± {s[f'{m}_std']:.3f}" if m != "error_px" else
                 f"{s[f'{m}_mean']:.2f} ± {s[f'{m}_std']:.2f}" for m in METRICS]
        lines.append(f"| {s['n_real']} | {s['arm']} | {s['seeds']} | {s['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def error_figure(summary: list[dict], title: str):
    """Test landmark error against N_real, one line per arm, mean and spread (sd) over seeds."""
    from .figures import new_figure

    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for arm in dict.fromkeys(s["arm"] for s in summary):
        points = sorted((s["n_real"], s["error_px_mean"], s["error_px_std"]) for s in summary if s["arm"] == arm)
        n, mean, sd = (np.array(v) for v in zip(*points))
        ax.errorbar(n, mean, yerr=sd, marker="o", capsize=3, label=arm,
                    linestyle="--" if arm == "mean-position baseline" else "-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("real labelled frames N_real")
    ax.set_ylabel("mean landmark error on test frames (px at 64 px)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def write_outputs(out: Path, rows: list[dict], faithfulness: list[dict], record: dict) -> None:
    from .figures import save_figure
    from .rundir import write_atomic

    summary = summarize(rows)
    _write_csv(out / "results.csv", rows)
    _write_csv(out / "summary.csv", summary)
    _write_csv(out / "faithfulness.csv", faithfulness)
    s = record["settings"]
    title = (f"Tracker error vs real set size ({len(s['seeds'])} seed(s), {s['tracker_steps']} steps per arm, "
             f"{s['n_synthetic']} synthetic)")
    text = f"# Labelled synthesis: tracker error\n\n{title}; test: {s['n_test']} phantom frames of seed {TEST_SEED}.\n\n"
    text += markdown_table(summary)
    if faithfulness:
        text += "\n## Label faithfulness (the real-only tracker on the synthetic frames)\n\n"
        text += "| N_real | seed | tracker vs label error px | PCK@3px | presence agreement | kept by filter |\n"
        text += "| --- | --- | --- | --- | --- | --- |\n"
        for f in faithfulness:
            text += (f"| {f['n_real']} | {f['seed']} | {f['tracker_vs_label_error_px']:.2f} | "
                     f"{f['tracker_vs_label_pck3']:.3f} | {f['presence_agreement']:.3f} | "
                     f"{f['kept_by_filter']} of {f['n_synthetic']} |\n")
    text += f"\nWall time {record['seconds']:.0f} s on {record['machine']['platform']} ({record['machine']['cpus']} CPUs).\n"
    write_atomic(out / "results.md", text)
    save_figure(error_figure(summary, "Tracker error vs N_real"), out, "error_vs_n_real")
    write_atomic(out / "experiment.json", json.dumps(record, indent=2))


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m medgan_lib.tracking", description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--n-real", type=_ints, default=defaults.n_real)
    parser.add_argument("--seeds", type=_ints, default=defaults.seeds)
    parser.add_argument("--synthetic", type=int, default=defaults.n_synthetic, help="synthetic frames per GAN")
    parser.add_argument("--n-test", type=int, default=defaults.n_test)
    parser.add_argument("--gan-steps", type=int, default=defaults.gan_steps)
    parser.add_argument("--steps", type=int, default=defaults.tracker_steps, help="optimiser steps of every tracker")
    parser.add_argument("--arms", type=lambda t: tuple(a for a in t.split(",") if a), default=defaults.arms)
    parser.add_argument("--filter-px", type=float, default=defaults.filter_px)
    parser.add_argument("--scale", choices=tuple(SCALES), default=defaults.scale)
    args = parser.parse_args(argv)
    try:
        settings = Settings(n_real=args.n_real, seeds=args.seeds, n_synthetic=args.synthetic, n_test=args.n_test,
                            gan_steps=args.gan_steps, tracker_steps=args.steps, arms=args.arms,
                            filter_px=args.filter_px, scale=args.scale)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record = run_experiment(settings, args.out_dir)
    print(f"wrote {Path(args.out_dir) / 'results.md'} ({record['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ----------------------------------------------------------------------------- notebook 08

NOTEBOOK_SETTINGS = {
    # make test (nbval): seconds to a minute
    "smoke": Settings(n_real=(16,), seeds=(0,), n_synthetic=16, n_test=16, gan_steps=2, tracker_steps=4,
                      scale="smoke"),
    # make reproduce: N_real = 32, seed 0 at half the GAN and tracker budgets of the full experiment
    # (the command's default), with 500 synthetic and 500 test frames: minutes, not half an hour
    "reproduce": Settings(n_real=(32,), seeds=(0,), n_synthetic=500, n_test=500, gan_steps=1200, tracker_steps=300),
}


def notebook_settings(preset: str, seed: int | None = None) -> Settings:
    """The experiment notebook 08 runs for a preset (``smoke`` for nbval, else the make-reproduce size)."""
    settings = NOTEBOOK_SETTINGS["smoke" if preset == "smoke" else "reproduce"]
    return settings if seed is None else dataclasses.replace(settings, seeds=(int(seed),))


def load_or_run(settings: Settings, out_dir: str | os.PathLike) -> tuple[list[dict], list[dict], dict]:
    """(results rows, faithfulness rows, record) of the experiment in ``out_dir``: read when it
    finished with these settings, else run (its GAN and tracker runs resume)."""
    import csv

    out = Path(out_dir)
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()}
    record_path = out / "experiment.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    expected = [[n, s] for n in settings.n_real for s in settings.seeds]
    if record is None or record["settings"] != wanted or record.get("done") != expected:
        record = run_experiment(settings, out, log=lambda *_: None)

    def read(name: str) -> list[dict]:
        with open(out / name) as f:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]

    return read("results.csv"), read("faithfulness.csv"), record


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def labelled_frames_figure(frames: LabelledFrames, title: str, columns: int = 4):
    """Frames with their landmarks drawn (one marker per landmark; absent ones not drawn)."""
    from .figures import new_figure
    from .phantom import LANDMARK_NAMES

    rows = math.ceil(len(frames) / columns)
    fig = new_figure(2.0 * columns, 2.0 * rows + 0.6)
    markers = ("o", "s", "^", "<", ">")
    for i in range(len(frames)):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow((frames.images[i, ..., 0] + 1) / 2, cmap="gray", vmin=0, vmax=1)
        for k, name in enumerate(LANDMARK_NAMES):
            if frames.present[i, k]:
                ax.plot(*frames.xy[i, k], markers[k % len(markers)], markersize=5, markerfacecolor="none",
                        markeredgewidth=1.2, label=name if i == 0 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"frame {i}", fontsize=7)
    fig.suptitle(title)
    fig.legend(loc="lower center", ncol=len(LANDMARK_NAMES), fontsize=7)
    return fig


def verdict(rows: list[dict], goal: float = 0.15) -> str:
    """A plain sentence per N_real: did real + synthetic beat real-only, by how much, against the goal."""
    summary = {(s["n_real"], s["arm"]): s for s in summarize(rows)}
    lines = []
    for n_real in sorted({n for n, _ in summary}):
        real = summary.get((n_real, "real"))
        mixed = summary.get((n_real, "real+synthetic"))
        if real is None or mixed is None:
            continue
        change = (mixed["error_px_mean"] - real["error_px_mean"]) / real["error_px_mean"]
        helped = "helped" if change <= -goal else ("did not help" if change >= 0 else "helped less than the goal")
        lines.append(f"N_real = {n_real}: real + synthetic {mixed['error_px_mean']:.2f} px vs real only "
                     f"{real['error_px_mean']:.2f} px ({100 * change:+.1f}%, goal -{100 * goal:.0f}%): "
                     f"synthetic frames {helped} ({real['seeds']} seed(s)).")
    return "\n".join(lines)
