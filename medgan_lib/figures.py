"""Figures: sample grids, and the labelled figures of the paper the notebooks regenerate.

Two layers:

* ``to_uint8``, ``image_grid``, ``save_sample_grid``: plain image tiles (used by the training
  loop for ``samples/epoch_NNNN.png``);
* matplotlib figures, each with a title and axis labels, built on ``matplotlib.figure.Figure``
  (no pyplot state, so they work headless and in tests) and written by ``save_figure`` as PNG
  and PDF under a run's ``figures/`` directory:

  - ``generator_diagram_figure``: paper Figure 3, drawn from the built generator;
  - ``image_grid_figure``, ``intensity_histogram_figure``: the training data;
  - ``loss_figure`` / ``loss_overlay_figure``: paper Figures 4 and 5, and both on one axis;
    ``loss_change_correlation`` checks the paper's claim that the two losses jump in opposite
    directions;
  - ``epoch_table_figure``: paper Table 4 (samples after epochs 1..600, scaled to the run);
  - ``interpolation_figure``, ``nearest_images_figure``: the explorer notebook's views.

Tables are written next to the figures by ``save_table`` (CSV and aligned text).
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from .rundir import PAPER_EPOCHS, scaled_epoch
from .tables import format_table, write_csv

# Paper Table 4: the epochs whose samples the paper shows, in its four rows (a)-(d).
PAPER_TABLE4_ROWS = ((1, 100, 200), (200, 250, 300), (300, 350, 400), (400, 500, 600))

STEM_TYPES = ("Dense", "Dropout", "BatchNormalization", "Reshape", "Activation", "Conv2D")

D_COLOR = "tab:red"
G_COLOR = "tab:blue"


# ----------------------------------------------------------------------------- image tiles


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] to uint8 [0, 255]."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, C)`` images in [-1, 1] into one uint8 ``(rows*H, columns*W, C)`` array."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * (h + gap): r * (h + gap) + h, col * (w + gap): col * (w + gap) + w] = image
    return grid


def save_sample_grid(images: np.ndarray, path: str | Path, columns: int | None = None) -> Path:
    """Save a grid of images in [-1, 1] as a PNG (grayscale when single-channel)."""
    grid = image_grid(images, columns)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return Path(path)


# ----------------------------------------------------------------------------- saving


def new_figure(width: float, height: float):
    """A pyplot-free matplotlib Figure with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_labels(fig) -> dict:
    """Title and axis labels of a figure (for checks): suptitle, and per axes title/xlabel/ylabel."""
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return {
        "suptitle": suptitle,
        "axes": [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes],
    }


def wrap_suptitle(fig) -> None:
    """Break the figure title into lines that fit the figure's width (about 0.55 em per character)."""
    if fig._suptitle is None:
        return
    title = fig._suptitle
    per_line = max(20, int(fig.get_figwidth() * 72 / (0.55 * title.get_fontsize())))
    lines = title.get_text().split("\n")
    title.set_text("\n".join(textwrap.fill(line, per_line) if line else line for line in lines))


def save_figure(fig, figures_dir: str | Path, name: str, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``figures_dir/name.png`` and ``.pdf``; returns both paths.

    Refuses a figure without a title (suptitle or an axes title) or without any axis label:
    every saved figure must be readable on its own; a title longer than the figure is wide is
    wrapped (:func:`wrap_suptitle`). PDFs carry no creation date, so re-running a notebook on
    the same run gives the same file.
    """
    wrap_suptitle(fig)
    labels = figure_labels(fig)
    if not (labels["suptitle"] or any(t for t, _, _ in labels["axes"])):
        raise ValueError(f"figure {name!r} has no title")
    if not any(x or y for _, x, y in labels["axes"]):
        raise ValueError(f"figure {name!r} has no axis label")
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = [figures_dir / f"{name}.png", figures_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return paths


def save_table(rows: list[dict], figures_dir: str | Path, name: str, title: str) -> list[Path]:
    """Write table rows as ``name.csv`` and an aligned ``name.txt`` (with ``title``)."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    txt_path = figures_dir / f"{name}.txt"
    txt_path.write_text(format_table(rows, title) + "\n")
    return [write_csv(figures_dir / f"{name}.csv", rows), txt_path]


def _show_image(ax, image: np.ndarray) -> None:
    """Draw one uint8 (H, W, C) image (gray when C == 1) without ticks."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------- Figure 3


def generator_diagram_figure(model, title: str | None = None):
    """Paper Figure 3 drawn from a built generator: the whole model (left) and one level (right).

    Every box text (layer type, kernel, filters, output shape) is read from the model's layers.
    """
    from .generator import level_table

    def shape(layer) -> str:
        return "x".join(str(d) for d in layer.output.shape[1:])

    names = [layer.name for layer in model.layers]
    levels = sorted({int(n[5:].split("_")[0]) for n in names if n.startswith("level")})
    stem = []
    for layer in model.layers:
        if layer.name.startswith("level") or type(layer).__name__ == "InputLayer":
            continue
        # the Keras type the paper names, also for project subclasses (e.g. a checkpointed Dropout)
        kind = next((c.__name__ for c in type(layer).__mro__ if c.__name__ in STEM_TYPES), type(layer).__name__)
        detail = {
            "Dense": lambda l: f"{l.units:,} units",
            "Dropout": lambda l: f"rate {l.rate}",
            "Reshape": lambda l: "",
            "Activation": lambda l: l.get_config()["activation"],
            "Conv2D": lambda l: f"{l.filters} filters, 1x1",
        }.get(kind, lambda l: "")(layer)
        stem.append((layer.name, f"{kind} {detail}".strip(), shape(layer)))
    latent = model.inputs[0].shape[-1]
    head = [s for s in stem if s[0] in ("dense", "dropout", "batchnorm", "reshape")]
    tail = [s for s in stem if s not in head]
    blocks = [("z", f"latent vector z ~ N(0, 1)", f"{latent}")] + head
    blocks += [(f"level{l}", f"upsampling level {l} (3 branches, concatenated)",
                shape(model.get_layer(f"level{l}_concat"))) for l in levels]
    blocks += tail

    fig = new_figure(13, max(6.5, 0.62 * len(blocks) + 1.5))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.35]})
    box = dict(boxstyle="round,pad=0.35", fc="#eef3fb", ec="#3b5b92")
    level_box = dict(boxstyle="round,pad=0.35", fc="#fdf1e3", ec="#b86e1f")
    n = len(blocks)
    for i, (name, text, out) in enumerate(blocks):
        y = 1 - (i + 0.5) / n
        left.text(0.5, y, f"{text}\n-> {out}", ha="center", va="center", fontsize=8.5,
                  bbox=level_box if name.startswith("level") else box, transform=left.transAxes)
        if i:
            left.annotate("", xy=(0.5, y + 0.28 / n), xytext=(0.5, y + 0.72 / n), xycoords="axes fraction",
                          arrowprops=dict(arrowstyle="->", color="0.3"))
    left.set_title("whole generator")
    left.set_xlabel("data flow top to bottom; '->' gives the output shape (H x W x channels)")

    level = levels[0]
    table = {row["layer"].split("_", 1)[1]: row for row in level_table(model, level)}
    gn = model.get_layer(f"level{level}_groupnorm")
    groups = gn.get_config().get("groups", "?")
    branches = [
        ("A", [("conv3x3", None),
               (None, f"GroupNormalization\n{groups} groups\n-> {shape(gn)}"), ("upsample", None),
               (None, f"Activation GELU\n-> {shape(model.get_layer(f'level{level}_gelu'))}")]),
        ("B", [("conv1x1_b", None), ("deconv3x3", None)]),
        ("C", [("conv1x1_c", None), ("deconv1x1", None)]),
    ]

    def describe(key: str) -> str:
        row = table[key]
        parts = [row["type"]]
        if row["kernel"] != "-":
            parts.append(f"{row['kernel']}, {row['filters']} filters")
        if row["pool_size"] != "-":
            parts.append(f"size {row['pool_size']}")
        if row["strides"] != "-":
            parts.append(f"stride {row['strides']}")
        return "\n".join([parts[0], ", ".join(parts[1:])]) + f"\n-> {row['output_shape']}"

    in_shape = "x".join(str(d) for d in model.get_layer(f"level{level}_conv3x3").input.shape[1:])
    right.text(0.5, 0.95, f"input {in_shape}", ha="center", va="center", fontsize=9, bbox=box,
               transform=right.transAxes)
    for b, (label, steps) in enumerate(branches):
        x = (b + 0.5) / 3
        right.annotate("", xy=(x, 0.86), xytext=(0.5, 0.92), xycoords="axes fraction",
                       arrowprops=dict(arrowstyle="->", color="0.3"))
        right.text(x, 0.88, f"branch {label}", ha="center", va="bottom", fontsize=8, color="0.3",
                   transform=right.transAxes)
        for s, (key, text) in enumerate(steps):
            y = 0.78 - s * 0.16
            right.text(x, y, describe(key) if key else text, ha="center", va="center", fontsize=8,
                       bbox=level_box, transform=right.transAxes)
            if s:
                right.annotate("", xy=(x, y + 0.055), xytext=(x, y + 0.105), xycoords="axes fraction",
                               arrowprops=dict(arrowstyle="->", color="0.3"))
        last_y = 0.78 - (len(steps) - 1) * 0.16
        right.annotate("", xy=(0.5, 0.14), xytext=(x, last_y - 0.06), xycoords="axes fraction",
                       arrowprops=dict(arrowstyle="->", color="0.3"))
    out = shape(model.get_layer(f"level{level}_concat"))
    right.text(0.5, 0.09, f"Concatenate (channels)\n-> {out}", ha="center", va="center", fontsize=9,
               bbox=box, transform=right.transAxes)
    right.set_title(f"one upsampling level (level {level} shown; paper Table 1)")
    right.set_xlabel("three parallel branches, each doubling height and width, concatenated")
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(title or f"Generator architecture (paper Figure 3): {model.count_params():,} parameters")
    return fig


# ----------------------------------------------------------------------------- data


def image_grid_figure(images: np.ndarray, title: str, columns: int | None = None,
                      xlabel: str = "image (column)", ylabel: str = "image (row)",
                      landmarks: Mapping[str, np.ndarray] | None = None):
    """Images in [-1, 1] as a grid of panels; optional landmark points (pixel x, y) per image."""
    images = np.asarray(images)
    n = len(images)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    fig = new_figure(1.6 * columns + 0.6, 1.6 * rows + 0.8)
    axes = np.atleast_2d(fig.subplots(rows, columns, squeeze=False))
    tiles = to_uint8(images)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        _show_image(ax, tiles[i])
        if landmarks:
            for k, (name, points) in enumerate(landmarks.items()):
                x, y = np.asarray(points)[i]
                if np.isfinite(x) and np.isfinite(y):
                    ax.plot(x, y, "o", ms=4, mfc="none", mew=1.0, color=f"C{k}", label=name)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    if landmarks:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        for ax in axes.flat[1:n]:
            h, l = ax.get_legend_handles_labels()
            for hh, ll in zip(h, l):
                if ll not in labels:
                    handles.append(hh)
                    labels.append(ll)
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    fig.suptitle(title)
    return fig


def intensity_histogram_figure(images: np.ndarray, title: str, bins: int = 64):
    """Histogram of pixel intensities (in the model's [-1, 1] range), per channel when RGB."""
    images = np.asarray(images, np.float32)
    fig = new_figure(7, 4)
    ax = fig.subplots()
    channels = images.shape[-1]
    names = ["gray"] if channels == 1 else ["red", "green", "blue"]
    for c in range(channels):
        values = images[..., c].ravel()
        ax.hist(values, bins=bins, range=(-1, 1), histtype="step", color=names[c] if channels == 3 else "0.2",
                weights=np.full(values.shape, 1.0 / values.size), label=names[c])
    ax.set_xlabel("pixel intensity (scaled to [-1, 1] as the generator's tanh output)")
    ax.set_ylabel("fraction of pixels")
    ax.set_title(title)
    if channels > 1:
        ax.legend()
    return fig


# ----------------------------------------------------------------------------- Figures 4-5


def _column(history: Sequence[Mapping], key: str) -> np.ndarray:
    return np.array([row[key] for row in history], dtype=np.float64)


def loss_figure(history: Sequence[Mapping], which: str, title: str | None = None):
    """Paper Figure 4 (``which="d"``, the discriminator's BCE) or 5 (``"g"``, the generator's)."""
    if which not in ("d", "g"):
        raise ValueError(f"which must be 'd' or 'g', got {which!r}")
    from matplotlib.ticker import MaxNLocator

    epochs = _column(history, "epoch")
    loss = _column(history, f"{which}_loss")
    fig = new_figure(8, 3.8)
    ax = fig.subplots()
    color = D_COLOR if which == "d" else G_COLOR
    ax.plot(epochs, loss, color=color, lw=1.2, marker="o" if len(epochs) < 30 else None, ms=3)
    ax.axhline(loss.mean(), color="0.4", ls="--", lw=0.8, label=f"mean {loss.mean():.3f}")
    who, number = ("discriminator", 4) if which == "d" else ("generator", 5)
    ax.set_title(title or f"Paper Figure {number}: {who} binary cross-entropy per epoch")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{who} loss (BCE, mean over the epoch's batches)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def loss_overlay_figure(history: Sequence[Mapping], title: str | None = None):
    """Both losses on one axis (the paper shows them in two figures), plus their epoch-to-epoch changes."""
    from matplotlib.ticker import MaxNLocator

    epochs = _column(history, "epoch")
    d, g = _column(history, "d_loss"), _column(history, "g_loss")
    fig = new_figure(9, 6)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    marker = "o" if len(epochs) < 30 else None
    top.plot(epochs, d, color=D_COLOR, lw=1.2, marker=marker, ms=3, label="discriminator (Figure 4)")
    top.plot(epochs, g, color=G_COLOR, lw=1.2, marker=marker, ms=3, label="generator (Figure 5)")
    top.set_ylabel("loss (BCE)")
    top.set_title("both losses on one axis")
    top.legend(loc="best")
    top.grid(alpha=0.3)
    if len(epochs) > 1:
        bottom.bar(epochs[1:] - 0.2 * np.diff(epochs).min(), np.diff(d), width=0.4 * np.diff(epochs).min(),
                   color=D_COLOR, label="change of discriminator loss")
        bottom.bar(epochs[1:] + 0.2 * np.diff(epochs).min(), np.diff(g), width=0.4 * np.diff(epochs).min(),
                   color=G_COLOR, label="change of generator loss")
        bottom.legend(loc="best", fontsize=8)
    bottom.axhline(0, color="0.3", lw=0.6)
    bottom.set_xlabel("epoch")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("change since previous epoch")
    bottom.set_title("epoch-to-epoch changes: opposite signs = the paper's anti-correlated jumps")
    bottom.grid(alpha=0.3)
    fig.suptitle(title or "Paper Figures 4 and 5 together: discriminator and generator loss")
    return fig


def loss_change_correlation(history: Sequence[Mapping], jump_sigma: float = 1.0) -> dict:
    """Check the paper's claim that the generator's loss jumps when the discriminator's drops.

    Returns the number of epoch-to-epoch changes ``n``, the Pearson correlation ``r`` of the
    changes of d_loss and g_loss (None with fewer than 3 changes or a constant series), the
    share of changes with opposite signs, and the same share among the generator's "jumps"
    (changes larger than ``jump_sigma`` standard deviations), plus a one-paragraph ``statement``.
    """
    d, g = _column(history, "d_loss"), _column(history, "g_loss")
    dd, dg = np.diff(d), np.diff(g)
    n = int(dd.size)
    r = None
    if n >= 3 and dd.std() > 0 and dg.std() > 0:
        r = float(np.corrcoef(dd, dg)[0, 1])
    opposite = float(np.mean(np.sign(dd) * np.sign(dg) < 0)) if n else None
    jumps = np.abs(dg - dg.mean()) > jump_sigma * dg.std() if n >= 3 and dg.std() > 0 else np.zeros(n, bool)
    jump_opposite = float(np.mean(np.sign(dd[jumps]) * np.sign(dg[jumps]) < 0)) if jumps.any() else None
    if r is None:
        statement = (f"Only {n} epoch-to-epoch change(s) in this run: too few to test the paper's claim "
                     "(a correlation needs at least 3). Train more epochs (e.g. the cpu preset).")
    else:
        verdict = ("supports" if r <= -0.3 else "weakly supports" if r < 0 else "does not support")
        statement = (
            f"Over {n} epoch-to-epoch changes, the changes of the discriminator's and the generator's loss "
            f"correlate with r = {r:+.2f}; they move in opposite directions in {100 * opposite:.0f}% of epochs"
            + (f", and in {100 * jump_opposite:.0f}% of the {int(jumps.sum())} largest generator jumps "
               f"(> {jump_sigma:g} sd)" if jump_opposite is not None else "")
            + f". This run {verdict} the paper's claim that every jump of one loss comes with a drop of the other."
        )
    return {"n": n, "r": r, "opposite_share": opposite, "jumps": int(jumps.sum()),
            "jump_opposite_share": jump_opposite, "statement": statement}


def loss_summary(history: Sequence[Mapping]) -> str:
    """:func:`loss_change_correlation`'s statement and both losses' mean and spread over the last half."""
    half = history[len(history) // 2:]
    lines = [loss_change_correlation(history)["statement"]]
    for key, who in (("d_loss", "discriminator"), ("g_loss", "generator")):
        values = _column(half, key)
        lines.append(f"{who}: mean {values.mean():.3f} +- {values.std():.3f} over the last {len(half)} epochs "
                     f"(log 2 = {np.log(2):.3f} is the value at D = 0.5)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Table 4


def table4_layout(epochs: int) -> list[list[tuple[int, int]]]:
    """Paper Table 4's four rows as (paper epoch, this run's epoch) pairs."""
    return [[(e, scaled_epoch(e, epochs)) for e in row] for row in PAPER_TABLE4_ROWS]


def table4_layout_text(epochs: int) -> str:
    """Paper Table 4's rows with the epochs of a run of ``epochs`` epochs that stand in for them."""
    return "\n".join(f"({label}) paper epochs {', '.join(str(p) for p, _ in row):<13} -> this run's epochs "
                     f"{', '.join(str(r) for _, r in row)} of {epochs}"
                     for label, row in zip("abcd", table4_layout(epochs)))


def epoch_table_figure(samples: Mapping[int, np.ndarray], epochs: int, real_images: np.ndarray,
                       per_cell: int = 4, title: str | None = None):
    """Paper Table 4: fixed-noise samples in its four rows of three epochs, real images beside.

    ``samples`` maps this run's epoch to its generated images in [-1, 1]; each cell shows the
    first ``per_cell`` of them as a grid (the same noise vectors in every cell), each row ends
    with ``per_cell`` different real training images.
    """
    layout = table4_layout(epochs)
    missing = sorted({run for row in layout for _, run in row if run not in samples})
    if missing:
        raise ValueError(f"no samples for epoch(s) {missing}; the run saves samples at snapshot_epochs({epochs})")
    columns = math.ceil(math.sqrt(per_cell))
    fig = new_figure(11, 11)
    axes = fig.subplots(len(layout), 4)
    real = np.asarray(real_images)
    for r, row in enumerate(layout):
        for c, (paper, run) in enumerate(row):
            ax = axes[r, c]
            _show_image(ax, image_grid(samples[run][:per_cell], columns))
            ax.set_title(f"epoch {run} of {epochs}" + ("" if run == paper and epochs == PAPER_EPOCHS
                                                       else f" (paper: {paper})"), fontsize=9)
        picks = real[(r * per_cell) % len(real):][:per_cell]
        if len(picks) < per_cell:
            picks = np.concatenate([picks, real[: per_cell - len(picks)]])
        _show_image(axes[r, 3], image_grid(picks, columns))
        axes[r, 3].set_title("real training images", fontsize=9)
        axes[r, 0].set_ylabel(f"({'abcd'[r]})", rotation=0, labelpad=14, fontsize=11)
    for c in range(3):
        axes[-1, c].set_xlabel(f"generated from the same {min(per_cell, len(next(iter(samples.values()))))} "
                               "fixed noise vectors", fontsize=8)
    axes[-1, 3].set_xlabel("for comparison", fontsize=8)
    fig.suptitle(title or f"Paper Table 4: generated images after increasing training ({epochs}-epoch run)")
    return fig


# ----------------------------------------------------------------------------- explorer


def interpolation_figure(images: np.ndarray, alphas: Sequence[float], title: str):
    """A row of generated images along a latent path; ``alphas`` are the path positions (0..1)."""
    n = len(images)
    fig = new_figure(1.5 * n + 0.6, 2.4)
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    tiles = to_uint8(images)
    for ax, tile, alpha in zip(axes, tiles, alphas):
        _show_image(ax, tile)
        ax.set_xlabel(f"t = {alpha:.2f}", fontsize=8)
    axes[0].set_ylabel("generated", fontsize=8)
    fig.suptitle(title)
    return fig


def nearest_images_figure(queries: np.ndarray, pool: np.ndarray, indices: np.ndarray, distances: np.ndarray,
                          title: str):
    """Each generated image (row) beside its nearest training images with their distances."""
    n, k = indices.shape
    fig = new_figure(1.5 * (k + 1) + 0.6, 1.6 * n + 0.8)
    axes = fig.subplots(n, k + 1, squeeze=False)
    q_tiles, p_tiles = to_uint8(queries), to_uint8(pool)
    for i in range(n):
        _show_image(axes[i, 0], q_tiles[i])
        axes[i, 0].set_ylabel(f"sample {i}", fontsize=8)
        for j in range(k):
            _show_image(axes[i, j + 1], p_tiles[indices[i, j]])
            axes[i, j + 1].set_xlabel(f"#{indices[i, j]}: d={distances[i, j]:.2f}", fontsize=7)
        axes[i, 0].set_xlabel("generated", fontsize=7)
    axes[0, 0].set_title("generated", fontsize=9)
    for j in range(k):
        axes[0, j + 1].set_title(f"nearest real #{j + 1}", fontsize=9)
    fig.suptitle(title)
    return fig


def close(figures: Iterable) -> None:
    """Release figures' memory (pyplot-free figures are freed with their canvas)."""
    for fig in figures:
        fig.clear()
