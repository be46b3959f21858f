"""The command line: architecture summary and one-line errors."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "medgan_lib", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_summary_prints_tables_1_and_3_for_a_preset():
    out = run("summary", "--preset", "smoke")
    assert out.returncode == 0, out.stderr
    assert "Table 1: upsampling level 1" in out.stdout
    assert "Table 3: generator parameters, ours vs paper" in out.stdout
    assert "17,074,528" in out.stdout  # the paper's generator total, beside ours
    assert "the paper's figures are for plain Xception only" in out.stdout


def test_bad_data_is_one_clear_error_line(tmp_path):
    out = run("train", "--preset", "smoke", "--data", f"folder:{tmp_path / 'missing'}", "--run-dir",
              str(tmp_path / "run"))
    assert out.returncode == 2
    error_lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "missing" in error_lines[0]
    assert "Traceback" not in out.stderr


def test_train_options_replace_the_presets_fields():
    from medgan_lib.__main__ import _parser, train_config

    args = _parser().parse_args(["train", "--preset", "cpu", "--run-dir", "r", "--update-order", "alternating",
                                 "--mixed-precision", "--epochs", "7"])
    config = train_config(args)
    assert (config.update_order, config.mixed_precision, config.epochs) == ("alternating", True, 7)
    assert config.backbone == "MobileNet@0.25"  # untouched fields keep the preset's values
    args = _parser().parse_args(["train", "--preset", "cpu", "--run-dir", "r", "--no-mixed-precision"])
    assert train_config(args).mixed_precision is False
    assert train_config(args).update_order == "simultaneous"
