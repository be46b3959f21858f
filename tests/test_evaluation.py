"""``evaluate``: metrics files of a run's generator snapshots, offline and deterministic."""
import csv
import json
import subprocess
import sys

import pytest

from medgan_lib.__main__ import main
from medgan_lib.config import preset
from medgan_lib.evaluation import CSV_FIELDS, EvaluationError, evaluate_run
from medgan_lib.rundir import snapshot_epochs, tensorboard_dir
from medgan_lib.tensorboard_log import logged_steps


def medgan(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medgan_lib", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_evaluate_cli_writes_metrics_with_counts(smoke_run, offline_env):
    out = medgan("evaluate", "--run-dir", str(smoke_run), "--n", "16", "--seed", "3", env=offline_env)
    assert out.returncode == 0, out.stderr
    assert "SWD x1e3" in out.stdout and "evaluate" in out.stderr  # table, progress bar
    assert out.stdout.startswith("WARNING: this run has no held-out images")  # npz data trained with holdout 0
    epochs = snapshot_epochs(preset("smoke").epochs)
    with open(smoke_run / "metrics_per_epoch.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [int(r["epoch"]) for r in rows] == epochs
    assert all(int(r["n_real"]) == int(r["n_fake"]) == 16 for r in rows)
    assert all(r["fid"] == "" and 0.0 <= float(r["precision"]) <= 1.0 for r in rows)  # offline: no FID
    logged = logged_steps(tensorboard_dir(smoke_run) / "evaluation")
    assert sorted(step for tag, step in logged if tag == "metrics/swd") == epochs  # TensorBoard, once per epoch
    record = json.loads((smoke_run / "metrics.json").read_text())
    assert record["epoch"] == epochs[-1] and record["n_fake"] == 16 and record["seed"] == 3
    assert record["real"]["spec"].startswith("npz:")
    assert (record["real"]["n_available"], record["real"]["n_used"]) == (64, 16)
    metrics = record["metrics"]
    assert {"swd", "ms_ssim_fake", "ms_ssim_real", "precision_recall", "nearest_real", "inception"} <= set(metrics)
    assert metrics["swd"]["n_real"] == metrics["swd"]["n_fake"] == 16
    assert metrics["precision_recall"]["n_fake"] == metrics["nearest_real"]["n_fake"] == 16
    assert metrics["inception"]["available"] is False and "InceptionV3" in metrics["inception"]["reason"]
    assert "fid" not in metrics
    per_epoch = json.loads((smoke_run / "metrics_per_epoch.json").read_text())
    assert per_epoch["epochs"] == epochs and set(per_epoch["metrics"]) == {str(e) for e in epochs}


def test_evaluate_is_deterministic_given_the_seed(smoke_run, offline):
    def final(seed: int, n: int | None = 12) -> dict:
        return evaluate_run(smoke_run, epochs=[3], n=n, seed=seed, progress=False)["metrics"]

    first = final(5)
    assert first == final(5)
    assert first["swd"]["value"] != final(6)["swd"]["value"]
    everything = final(5, n=None)
    assert everything["n_real"] == everything["n_fake"] == 64  # default: all real images


def test_evaluate_errors_name_the_problem(smoke_run, tmp_path, offline, capsys):
    with pytest.raises(EvaluationError, match=r"no generator snapshot for epochs \[7\]"):
        evaluate_run(smoke_run, epochs=[7], progress=False)
    (tmp_path / "config.json").write_text((smoke_run / "config.json").read_text())
    assert main(["evaluate", "--run-dir", str(tmp_path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no generator snapshots" in errors[0]


def test_compare_table_has_a_row_per_variant_and_dashes_for_the_reference():
    from medgan_lib.compare import RUN_FIELDS, VARIANTS, markdown_table, variant_config

    row = {"variant": "dcgan", "d_trainable": 1234, "d_frozen": 5, "seconds_per_epoch": 2.0, "swd": 40.0,
           "ms_ssim_fake": 0.3, "ms_ssim_real": 0.25, "precision": 0.5, "recall": 0.4, "memorisation_rate": 0.0,
           "d_loss": 0.6, "g_loss": 0.9}
    lines = markdown_table([row, {**row, **dict.fromkeys(RUN_FIELDS), "variant": "reference"}]).splitlines()
    assert len(lines) == 4 and "| dcgan | 1,234 / 5 | 2.0 | 40.0 | 0.300 / 0.250 |" in lines[2]
    assert lines[3].startswith("| reference | - | - | 40.0 |") and lines[3].endswith("| - |")
    configs = {name: variant_config(name, "cpu", 7) for name in VARIANTS}
    assert {c.epochs for c in configs.values()} == {7}
    assert configs["projected-diffaugment"].diff_augment and configs["paper-transfer"].d_mode == "transfer"
    fields = [c.to_dict() for c in configs.values()]
    differing = {f for d in fields for f, v in d.items() if v != fields[0][f]}
    assert differing == {"discriminator", "d_mode", "diff_augment"}  # only D
