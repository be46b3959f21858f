"""What `make reproduce` decides before and while it runs the notebooks: whether the paper-method run's
discriminator finds its ImageNet file (else the labelled offline fallback), which runs a notebook
shows and in what order, and the side-by-side tables."""
from pathlib import Path

import numpy as np
import pytest

from medgan_lib import notebook_helpers as nh
from medgan_lib import pretrained
from medgan_lib.config import preset
from medgan_lib.evaluation import comparison_rows, epoch_trend, format_rows


def test_check_says_cpu_falls_back_offline_medgan_needs_no_file_and_paper_cannot_run(offline, capsys):
    assert pretrained.main(["--preset", "cpu"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("fallback: ") and "mobilenet_2_5_224_tf_no_top.h5" in out
    assert pretrained.main(["--preset", "medgan"]) == 0
    assert capsys.readouterr().out.startswith("not needed: ")
    assert pretrained.main(["--preset", "paper"]) == 2  # transfer mode has no fallback: an error line
    assert capsys.readouterr().err.startswith("error: ImageNet weights for Xception are unavailable")


def test_check_finds_a_file_where_training_looks(offline):
    config = preset("smoke").replace(d_mode="auto")  # MobileNetV2@0.35: no official hash, accepted unverified
    entry = pretrained.weights_file("MobileNetV2", 0.35)
    assert pretrained.discriminator_weights(config)[0] == pretrained.FALLBACK
    (offline["weights_dir"] / entry.file_name).write_bytes(b"weights")
    status, text = pretrained.discriminator_weights(config)
    assert status == pretrained.FOUND and str(offline["weights_dir"] / entry.file_name) in text


def test_offline_the_auto_run_is_cut_to_the_fallback_epochs_and_says_so(offline, tmp_path):
    config, _ = nh.notebook_config("cpu", run_dir=tmp_path, fallback_epochs=60)
    assert config.epochs == 60
    assert config == preset("cpu").replace(epochs=60, notes=config.notes)
    assert [n for n in config.notes if nh.OFFLINE_FALLBACK in n and "epochs=60" in n and "600" in n]
    asked, _ = nh.notebook_config("cpu", epochs=5, run_dir=tmp_path, fallback_epochs=60)
    assert asked == preset("cpu").replace(epochs=5)  # explicit epochs: no fallback
    assert nh.notebook_config("cpu", run_dir=tmp_path)[0] == preset("cpu")  # no fallback_epochs: none
    assert nh.notebook_config("medgan", run_dir=tmp_path, fallback_epochs=60)[0] == preset("medgan")


def test_with_the_weights_the_cpu_run_keeps_its_600_epochs(offline, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "discriminator_weights", lambda config: (pretrained.FOUND, "found"))
    assert nh.notebook_config("cpu", run_dir=tmp_path, fallback_epochs=60)[0] == preset("cpu")


def test_the_recommended_run_comes_first_and_an_empty_directory_leaves_it_out(tmp_path):
    args = ("smoke", "phantom", None, None, tmp_path / "paper")
    runs = nh.notebook_runs(*args, "medgan_smoke", tmp_path / "recommended")
    assert [(r.config.preset, r.run_dir.name) for r in runs] == [("medgan_smoke", "recommended"), ("smoke", "paper")]
    assert [r.label for r in runs] == ["medgan_smoke preset (recommended method)", "smoke preset (paper method)"]
    assert [r.config.preset for r in nh.notebook_runs(*args, "medgan_smoke", "")] == ["smoke"]
    assert [r.config.preset for r in nh.notebook_runs(*args, "", None)] == ["smoke"]
    assert len(nh.notebook_runs(*args, "smoke", tmp_path / "paper")) == 1  # one directory: shown once
    default = nh.notebook_runs(*args, "medgan", None)[0]
    assert default.run_dir == (Path.cwd() / ".." / "runs" / "medgan").resolve()
    assert "== smoke preset (paper method)\nx" in nh.per_run_text(runs, lambda run: "x")


def test_nbval_keeps_the_recommended_run_beside_the_smoke_run(tmp_path):
    env = nh.nbval_environment(tmp_path / "run")
    assert env[nh.ENV_RECOMMENDED_PRESET] == "medgan_smoke"
    assert env[nh.ENV_RECOMMENDED_RUN_DIR] == str(tmp_path / "run_recommended")


def metrics_row(epoch, swd, coarse=5.0):
    return {"epoch": epoch, "n_real": 64, "n_fake": 64, "swd": swd, "swd_per_level": f"{swd:.2f};{coarse:.2f}",
            "swd_resolutions": "32;16", "ms_ssim_fake": 0.2, "ms_ssim_real": 0.1, "precision": 0.5, "recall": 0.4,
            "memorisation_rate": 0.0}


def test_comparison_has_each_runs_last_epoch_then_one_shared_reference():
    def result(swds, fingerprint="same"):
        return {"per_epoch": [metrics_row(e, s) for e, s in enumerate(swds, 1)], "real": {"fingerprint": fingerprint},
                "reference": {"row": metrics_row("reference", 1.0)}}

    rows = comparison_rows({"medgan": result([9.0, 4.0]), "cpu": result([9.0, 7.0, 8.0])})
    assert [r["epoch"] for r in rows] == ["medgan, epoch 2", "cpu, epoch 3", "real vs real reference"]
    assert [r["swd"] for r in rows] == [4.0, 8.0, 1.0]
    assert "real vs real reference" in format_rows(rows, title="runs")
    other = comparison_rows({"medgan": result([4.0]), "cpu": result([8.0], "other")})
    assert [r["epoch"] for r in other][2:] == ["real vs real reference (medgan's real images)",
                                               "real vs real reference (cpu's real images)"]


def test_epoch_trend_names_the_best_epoch():
    rows = [metrics_row(1, 9.0, 7.0), metrics_row(2, 3.0, 2.0), metrics_row(3, 5.0, 4.0)]
    text = epoch_trend(rows)
    assert "SWD is lowest at epoch 2, not at the last epoch 3" in text
    assert "coarsest SWD level (16 px): epoch 1: 7.0, epoch 3: 4.0, lowest at epoch 2" in text
    assert "the last epoch is the best by SWD" in epoch_trend(rows[:2])


def test_diversity_rows_end_with_the_real_images():
    from medgan_lib.sampling import diversity_rows

    real = np.random.default_rng(0).uniform(-1, 1, (8, 4, 4, 1))
    rows = diversity_rows({1: np.zeros((4, 4, 4, 1)), 2: real[:4]}, real)
    assert rows[0]["sample_std"] == 0.0 and rows[1]["nearest_real_rms"] == 0.0  # one image; copies of real ones
    assert rows[-1]["epoch"] == "real data" and rows[-1]["sample_std"] == pytest.approx(real.std(axis=0).mean(), abs=1e-4)
