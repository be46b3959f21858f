"""Training runs end to end: files, resume after SIGKILL, config guard, NaN stop."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medgan_lib.config import preset
from medgan_lib.rundir import read_history, snapshot_epochs
from medgan_lib.runs import RunError, TrainingDiverged, train

from conftest import LIGHT_BACKBONE

REPO = Path(__file__).resolve().parents[1]


def medgan(*args: str) -> list[str]:
    return [sys.executable, "-m", "medgan_lib", *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_snapshot_epochs_scale_paper_table_4():
    assert snapshot_epochs(600) == [1, 100, 200, 250, 300, 350, 400, 500, 600]
    assert snapshot_epochs(60) == [1, 10, 20, 25, 30, 35, 40, 50, 60]
    assert snapshot_epochs(3) == [1, 2, 3]


def test_smoke_run_writes_every_record(smoke_run):
    config = json.loads((smoke_run / "config.json").read_text())
    provenance = json.loads((smoke_run / "provenance.json").read_text())
    history = read_history(smoke_run / "history.csv")
    assert config["preset"] == "smoke"
    assert [row["epoch"] for row in history] == list(range(1, config["epochs"] + 1))
    assert provenance["discriminator"]["mode"] in ("transfer", "scratch")
    assert provenance["discriminator"]["requested_mode"] == config["d_mode"]
    assert len(provenance["dataset"]["fingerprint"]) == 64
    assert provenance["packages"]["tensorflow"] == "2.15.1"
    for epoch in snapshot_epochs(config["epochs"]):
        samples = np.load(smoke_run / "samples" / f"epoch_{epoch:04d}.npy")
        assert samples.shape == (config["n_fixed_samples"], config["image_size"], config["image_size"], 1)
        assert (smoke_run / "samples" / f"epoch_{epoch:04d}.png").stat().st_size > 0
        assert (smoke_run / "checkpoints" / "generator" / f"epoch_{epoch:04d}.weights.h5").exists()
    assert json.loads((smoke_run / "checkpoints" / "latest.json").read_text())["epoch"] == config["epochs"]


def test_scratch_mode_losses_leave_chance(smoke_run):
    history = read_history(smoke_run / "history.csv")
    assert max(abs(row["d_loss"] - np.log(2)) for row in history) > 0.05


def test_other_config_in_the_same_run_dir_is_refused(smoke_run):
    with pytest.raises(RunError, match="batch_size"):
        train(preset("smoke").replace(batch_size=8), smoke_run, progress=False)


def test_rerun_of_a_finished_run_changes_nothing(smoke_run, smoke_run_data):
    before = (smoke_run / "history.csv").read_text()
    subprocess.run(medgan("train", "--preset", "smoke", "--data", smoke_run_data, "--run-dir", str(smoke_run)),
                   env=env(), check=True, timeout=600)
    assert (smoke_run / "history.csv").read_text() == before
    assert len(json.loads((smoke_run / "provenance.json").read_text())["sessions"]) == 2


def test_non_finite_loss_stops_with_the_last_checkpoint_intact(tmp_path):
    config = preset("smoke").replace(epochs=2, g_learning_rate=1e30, d_learning_rate=1e30)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(config, tmp_path, progress=False)
    latest = tmp_path / "checkpoints" / "latest.json"
    assert not latest.exists() or json.loads(latest.read_text())["epoch"] < 2


# 16 steps per epoch: the kill 0.3 s into epoch 4 lands mid-epoch.
RESUME_ARGS = ("--preset", "smoke", "--backbone", LIGHT_BACKBONE, "--epochs", "6", "--n-images", "256",
               "--deterministic")
# The recommended preset at smoke scale: its weight average, R1 steps, DiffAugment and noise
# injection must resume exactly too.
MEDGAN_RESUME_ARGS = ("--preset", "medgan", "--epochs", "6", "--n-images", "512", "--levels", "3",
                      "--start-channels", "32", "--width", "2", "--latent-dim", "32", "--batch-size", "16",
                      "--g-ema-decay", "0.7", "--deterministic")


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}
    with h5py.File(run_dir / "checkpoints" / "generator" / "epoch_0006.weights.h5") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
    return arrays


@pytest.mark.parametrize("args", [RESUME_ARGS, MEDGAN_RESUME_ARGS], ids=["smoke", "medgan"])
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, args):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(medgan("train", *args, "--run-dir", str(straight)), env=env(), check=True, timeout=900)

    process = subprocess.Popen(medgan("train", *args, "--run-dir", str(killed)), env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = killed / "history.csv"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 4:  # header + 3 epochs
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into epoch 4
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((killed / "checkpoints" / "latest.json").read_text())["epoch"] < 6
    subprocess.run(medgan("train", *args, "--run-dir", str(killed)), env=env(), check=True, timeout=900)

    drop_seconds = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert drop_seconds(read_history(killed / "history.csv")) == drop_seconds(read_history(straight / "history.csv"))
    ours, theirs = weights(killed), weights(straight)
    assert ours.keys() == theirs.keys() and ours
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_run_from_before_a_new_config_field_still_resumes(tmp_path):
    from medgan_lib.runs import _check_config

    saved = preset("smoke").to_dict()
    del saved["fused_adam"]  # a field added after this run was created; its default applies
    (tmp_path / "config.json").write_text(json.dumps(saved))
    _check_config(tmp_path, preset("smoke"))
    with pytest.raises(RunError, match="fused_adam"):
        _check_config(tmp_path, preset("smoke").replace(fused_adam=False))
