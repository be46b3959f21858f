"""Figures of the notebooks (medgan_lib.figures) and the helpers they use (notebook_helpers)."""
import numpy as np
import pytest
import tensorflow as tf

from medgan_lib import figures
from medgan_lib import sampling
from medgan_lib.config import preset
from medgan_lib.generator import build_generator
from medgan_lib.rundir import load_weights_file, snapshot_epochs


def history(d, g):
    return [{"epoch": i + 1, "d_loss": float(a), "g_loss": float(b)} for i, (a, b) in enumerate(zip(d, g))]


def test_save_figure_writes_png_and_reproducible_pdf(tmp_path):
    def save():
        fig = figures.loss_figure(history([0.7, 0.6, 0.8], [0.9, 1.1, 0.7]), "d")
        return figures.save_figure(fig, tmp_path / "figures", "figure4")

    paths = save()
    assert [p.name for p in paths] == ["figure4.png", "figure4.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = paths[1].read_bytes()
    assert first.startswith(b"%PDF")
    save()
    assert paths[1].read_bytes() == first  # no creation date: same history, same file


def test_save_figure_refuses_unlabelled_figures(tmp_path):
    fig = figures.new_figure(3, 3)
    ax = fig.subplots()
    ax.plot([1, 2])
    with pytest.raises(ValueError, match="no title"):
        figures.save_figure(fig, tmp_path, "bare")
    ax.set_title("a title")
    with pytest.raises(ValueError, match="no axis label"):
        figures.save_figure(fig, tmp_path, "bare")
    ax.set_xlabel("x")
    figures.save_figure(fig, tmp_path, "bare")


@pytest.mark.parametrize("which, number, who", [("d", 4, "discriminator"), ("g", 5, "generator")])
def test_loss_figures_are_the_papers_figures_4_and_5(which, number, who):
    fig = figures.loss_figure(history([0.7, 0.6, 0.8], [0.9, 1.1, 0.7]), which)
    (title, xlabel, ylabel), = figures.figure_labels(fig)["axes"]
    assert f"Figure {number}" in title and who in title
    assert xlabel == "epoch" and who in ylabel
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])


def test_overlay_has_both_losses_and_their_changes():
    fig = figures.loss_overlay_figure(history([0.7, 0.6, 0.8, 0.5], [0.9, 1.1, 0.7, 1.2]))
    top, bottom = fig.axes
    assert len(top.lines) == 2
    assert len(bottom.patches) == 2 * 3  # one bar per change and loss
    assert figures.figure_labels(fig)["suptitle"]


def test_loss_change_correlation_detects_anti_correlated_jumps():
    rng = np.random.default_rng(0)
    dd = rng.standard_normal(50)
    check = figures.loss_change_correlation(history(np.cumsum(dd) + 5, np.cumsum(-dd) + 5))
    assert check["n"] == 49 and check["r"] == pytest.approx(-1.0)
    assert check["opposite_share"] == 1.0 and check["jump_opposite_share"] == 1.0
    assert "r = -1.00" in check["statement"] and "supports" in check["statement"]
    same = figures.loss_change_correlation(history(np.cumsum(dd), np.cumsum(dd)))
    assert same["r"] == pytest.approx(1.0) and "does not support" in same["statement"]


def test_loss_change_correlation_says_when_a_run_is_too_short():
    check = figures.loss_change_correlation(history([0.8, 0.7, 0.75], [0.6, 0.7, 0.65]))
    assert check["n"] == 2 and check["r"] is None
    assert "too few" in check["statement"]


@pytest.mark.parametrize("epochs", [3, 7, 60, 600, 1000])
def test_table4_layout_uses_the_epochs_the_run_saved(epochs):
    layout = figures.table4_layout(epochs)
    assert [[p for p, _ in row] for row in layout] == [list(r) for r in figures.PAPER_TABLE4_ROWS]
    assert {run for row in layout for _, run in row} == set(snapshot_epochs(epochs))
    if epochs == 600:
        assert all(p == r for row in layout for p, r in row)


def test_epoch_table_figure_lays_out_table_4_beside_real_images(random_images):
    samples = {e: random_images(4, 16, seed=e) for e in snapshot_epochs(60)}
    fig = figures.epoch_table_figure(samples, 60, random_images(10, 16, seed=99))
    assert len(fig.axes) == 16
    titles = [t for t, _, _ in figures.figure_labels(fig)["axes"]]
    assert titles[0] == "epoch 1 of 60 (paper: 1)" and titles[2] == "epoch 20 of 60 (paper: 200)"
    assert titles[3] == "real training images"
    assert [ax.get_ylabel() for ax in fig.axes[::4]] == ["(a)", "(b)", "(c)", "(d)"]
    del samples[25]
    with pytest.raises(ValueError, match=r"no samples for epoch\(s\) \[25\]"):
        figures.epoch_table_figure(samples, 60, random_images(10, 16))


def test_data_figures(random_images, tmp_path):
    x = random_images(6, 16, channels=1)
    marks = {"tip": np.array([[3.0, 4.0]] * 6), "absent": np.full((6, 2), np.nan)}
    fig = figures.image_grid_figure(x, "six images", landmarks=marks)
    assert sum(ax.get_visible() for ax in fig.axes) == 6
    assert len(fig.axes[0].lines) == 1  # NaN landmarks are not drawn
    figures.save_figure(fig, tmp_path, "grid")
    hist = figures.intensity_histogram_figure(random_images(3, 16, channels=3), "rgb")
    assert len(hist.axes[0].patches) == 3  # one step histogram per channel
    figures.save_figure(hist, tmp_path, "hist")


def test_generator_diagram_reads_the_model():
    config = preset("smoke")
    fig = figures.generator_diagram_figure(build_generator(config))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(f"upsampling level {config.levels}" in t for t in texts)
    assert any(t.startswith("Conv2DTranspose\n1x1") for t in texts)
    assert any(t.startswith(f"Dropout rate {config.dropout}") for t in texts)  # Keras type, also for subclasses
    assert f"{build_generator(config).count_params():,} parameters" in figures.figure_labels(fig)["suptitle"]


def test_save_table(tmp_path):
    rows = [{"count": "total", "paper": 10, "ours": 12}]
    csv_path, txt_path = figures.save_table(rows, tmp_path, "t3", "Table 3")
    assert csv_path.read_text().splitlines() == ["count,paper,ours", "total,10,12"]
    assert txt_path.read_text().startswith("Table 3\n")


def test_nearest_images_finds_copies(random_images):
    pool = random_images(20, 16)
    idx, dist = sampling.nearest_images(pool[[7, 3]], pool, k=2)
    assert idx[:, 0].tolist() == [7, 3]
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-6)
    assert (dist[:, 1] > 0.1).all()
    fig = figures.nearest_images_figure(pool[[7, 3]], pool, idx, dist, "nearest")
    assert fig.axes[1].get_xlabel() == "#7: d=0.00"


def test_slerp_and_latents(random_images):
    z = sampling.latent_batch(5, 2, 64)
    np.testing.assert_array_equal(z, sampling.latent_batch(5, 2, 64))
    t, path = sampling.slerp(z[0], z[1], 5)
    np.testing.assert_allclose(t, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(path[0], z[0], rtol=1e-5)
    np.testing.assert_allclose(path[-1], z[1], rtol=1e-5)
    norms = np.linalg.norm(path, axis=1)
    assert norms.min() > 0.8 * min(norms[0], norms[-1])  # no dip through the improbable centre
    fig = figures.interpolation_figure(random_images(5, 16), t, "path")
    assert [ax.get_xlabel() for ax in fig.axes] == ["t = 0.00", "t = 0.25", "t = 0.50", "t = 0.75", "t = 1.00"]


@pytest.mark.parametrize("name", ["legacy.tmp.h5", "model.weights.h5"])
def test_load_weights_file_reads_both_keras_layouts(tmp_path, name):
    def model():
        inputs = tf.keras.Input((3,))
        return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="dense")(inputs))

    source = model()
    source.save_weights(str(tmp_path / name))
    stored = tmp_path / "epoch_0001.weights.h5"  # the name runs.train publishes
    (tmp_path / name).rename(stored)
    target = model()
    load_weights_file(target, stored)
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_title_wider_than_the_figure_is_wrapped_when_saved(tmp_path):
    title = "medgan preset (recommended method): Generated from the fixed noise after epoch 150 of 150"
    fig = figures.image_grid_figure(np.zeros((4, 8, 8, 1)), title)  # 2x2 panels: about 3.8 inches wide
    figures.save_figure(fig, tmp_path, "grid")
    lines = fig._suptitle.get_text().split("\n")
    assert len(lines) > 1 and " ".join(lines) == title
    per_line = fig.get_figwidth() * 72 / (0.55 * fig._suptitle.get_fontsize())
    assert max(len(line) for line in lines) <= per_line
    short = figures.image_grid_figure(np.zeros((4, 8, 8, 1)), "short title")
    figures.save_figure(short, tmp_path, "short")
    assert short._suptitle.get_text() == "short title"
