"""The command line: every Config field as an option, --config files, --dry-run, one-line errors."""
import importlib
import json
import os
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest

from medgan_lib.__main__ import _parser, main
from medgan_lib.config import PRESETS, Config, preset
from medgan_lib.config_cli import (CHOICES, field_comments, field_help, field_type, option_fields, option_name,
                                   resolve_config)

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


def train_config(*options: str) -> Config:
    return resolve_config(_parser().parse_args(["train", *options]))


def test_train_options_replace_the_presets_fields():
    config = train_config("--preset", "cpu", "--run-dir", "r", "--update-order", "alternating", "--mixed-precision",
                          "--epochs", "7")
    assert (config.update_order, config.mixed_precision, config.epochs) == ("alternating", True, 7)
    assert config.backbone == "MobileNet@0.25"  # untouched fields keep the preset's values
    config = train_config("--preset", "cpu", "--run-dir", "r", "--no-mixed-precision")
    assert config.mixed_precision is False
    assert config.update_order == "simultaneous"


def other_value(name: str, current):
    """A value of field ``name`` unlike ``current`` that Config accepts, written as --set text."""
    kind = field_type(name)
    if name in CHOICES:
        return next(c for c in CHOICES[name] if c != current)
    if kind is bool:
        return str(not current).lower()
    if name == "channels":
        return "3" if current == 1 else "1"
    if kind is float:
        return repr(current / 2 if current else 0.25)
    if kind is int or int in typing.get_args(kind):  # int, or int | None
        return str((current or 1) + 1)
    if name == "notes":
        return '["first note", "second, with a comma"]'
    return {"data": "phantom:40", "backbone": "ResNet50", "diff_augment_policy": "translation"}[name]


# Fields that Config accepts only together with another field's value: that value is set first.
PREREQUISITES = {"g_noise_levels": {"generator": "resize_conv"},
                 "g_noise_modulated": {"generator": "resize_conv", "g_noise_levels": 2}}


def test_every_config_field_is_settable_by_set_and_by_its_named_option():
    for f in option_fields():
        needs = PREREQUISITES.get(f.name, {})
        base = preset("smoke").replace(**needs)
        first = [arg for name, value in needs.items() for arg in ("--set", f"{name}={value}")]
        text = other_value(f.name, getattr(base, f.name))
        by_set = train_config("--preset", "smoke", *first, "--set", f"{f.name}={text}")
        assert getattr(by_set, f.name) != getattr(base, f.name), f.name
        assert by_set.replace(**{f.name: getattr(base, f.name)}) == base  # nothing else changed
        if field_type(f.name) is bool:
            named = train_config("--preset", "smoke", *first,
                                 f"--{'' if text == 'true' else 'no-'}{option_name(f.name)[2:]}")
        else:
            named = train_config("--preset", "smoke", *first, option_name(f.name), text)
        assert named == by_set, f.name
    assert train_config("--set", "notes=[\"a\", \"b, c\"]", "--set", "n_images=none").notes == ("a", "b, c")
    assert train_config("--preset", "smoke", "--set", "n_images=none").n_images is None


def test_config_file_then_named_options_then_set(tmp_path):
    full = tmp_path / "config.json"
    full.write_text(preset("smoke").replace(epochs=9).to_json())  # a run's config.json, image_size included
    assert train_config("--config", str(full)) == preset("smoke").replace(epochs=9)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"discriminator": "dcgan", "epochs": 5, "g_learning_rate": 1}))
    config = train_config("--preset", "cpu", "--config", str(partial), "--epochs", "6", "--set", "epochs=7")
    assert (config.preset, config.discriminator, config.epochs, config.g_learning_rate) == ("cpu", "dcgan", 7, 1.0)


def run_main(capsys, *args: str) -> tuple[int, str, list[str]]:
    """(exit status, stdout, error lines) of the command line run in this process."""
    try:
        code = main(list(args))
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.startswith("error:")]


def test_dry_run_prints_the_resolved_config_and_leaves_the_run_dir_alone(capsys, tmp_path):
    code, out, errors = run_main(capsys, "train", "--preset", "cpu", "--set", "discriminator=dcgan", "--dry-run",
                                 "--run-dir", str(tmp_path / "run"))
    assert code == 0 and not errors
    printed = json.loads(out)
    assert printed["discriminator"] == "dcgan" and printed["preset"] == "cpu" and printed["latent_dim"] == 128
    assert Config.from_dict(printed) == preset("cpu").replace(discriminator="dcgan")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("options, message", [
    (["--set", "learning_rate=1e-3"], "error: --set learning_rate=1e-3: unknown configuration field "
                                      "'learning_rate'; did you mean 'g_learning_rate'?"),
    (["--set", "epochs"], "error: --set epochs: expected FIELD=VALUE"),
    (["--set", "epochs=ten"], "error: --set epochs=ten: expected an integer, got 'ten'"),
    (["--batch-size", "1.5"], "error: --batch-size: expected an integer, got '1.5'"),
    (["--set", "mixed_precision=maybe"], "error: --set mixed_precision=maybe: expected true or false, got 'maybe'"),
    (["--set", "d_mode=imagenet"], "error: --set d_mode=imagenet: must be one of transfer, scratch, auto; got "
                                   "'imagenet'"),
    (["--epochs", "0"], "error: --epochs: must be >= 1, got 0"),
    (["--set", "real_label=1.5"], "error: --set real_label=1.5: must be in (0, 1], got 1.5"),
    (["--channels", "2"], "error: --channels: must be 1 or 3, got 2"),
    (["--holdout", "1"], "error: --holdout: must be in [0, 1), got 1.0"),
    (["--epoch", "3"], "error: unrecognized arguments: --epoch 3"),
])
def test_bad_train_options_are_one_error_line_naming_the_option(capsys, options, message):
    code, out, errors = run_main(capsys, "train", "--preset", "smoke", *options, "--dry-run")
    assert code == 2 and not out
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_bad_config_files_are_one_error_line_naming_the_file_and_field(capsys, tmp_path):
    path = tmp_path / "c.json"
    for content, message in (('{"epoch": 3}', "unknown configuration field 'epoch'; did you mean 'epochs'?"),
                             ('{"epochs": "3"}', 'epochs: expected int, got "3"'),
                             ('{"n_images": 2.5}', "n_images: expected int or none, got 2.5"),
                             ('{"epochs": -1}', "epochs: must be >= 1, got -1"),
                             ('{"levels": 2, "image_size": 32}', "image_size: 32 does not match"),
                             ('{"epochs": 3', "not valid JSON"), ("[1]", "expected a JSON object")):
        path.write_text(content)
        code, _, errors = run_main(capsys, "train", "--config", str(path), "--dry-run")
        assert code == 2 and len(errors) == 1 and errors[0].startswith(f"error: --config {path}") and \
            message in errors[0], (content, errors)
    code, _, errors = run_main(capsys, "train", "--config", str(tmp_path / "missing.json"), "--dry-run")
    assert code == 2 and "missing.json: cannot read" in errors[0]


def test_train_without_run_dir_is_an_error(capsys):
    code, _, errors = run_main(capsys, "train", "--preset", "smoke")
    assert code == 2 and errors == ["error: --run-dir: required (unless --dry-run)"]


def test_help_gives_every_option_a_default_and_every_command_an_example(capsys):
    for command in ("train", "summary", "evaluate", "generate", "export"):
        code, out, _ = run_main(capsys, command, "--help")
        assert code == 0 and "example" in out, command
    code, out, _ = run_main(capsys, "train", "--help")
    options = out[out.index("configuration fields"):]
    for f in option_fields():
        entry = options[options.index(f"  {option_name(f.name)}"):]
        assert "(presets: " in " ".join(entry[:400].split()), f.name
    epochs = ", ".join(f"{name} {PRESETS[name].epochs}" for name in sorted(PRESETS))
    assert f"(presets: {epochs})" in " ".join(out.split())  # --epochs
    code, out, _ = run_main(capsys, "generate", "--help")
    assert "(default: png)" in " ".join(out.split())


def test_every_field_has_help_from_the_table_or_its_comment_in_config():
    assert "the paper is 1" in field_comments()["width"]  # the comment beside the field
    assert field_comments()["update_order"].startswith("Order of the two updates of a step")  # the block above
    assert "epochs" not in field_comments()  # a one-line section title above it is not help
    undocumented = [f.name for f in option_fields() if field_help(f.name) == f.name.replace("_", " ")]
    assert not undocumented, f"add a comment beside these Config fields (or FIELD_HELP entries): {undocumented}"


def test_compare_and_bench_are_subcommands(capsys):
    for command, expected in (("compare", "--out-dir OUT_DIR"), ("bench", "{speed,quality}")):
        code, out, _ = run_main(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: python -m medgan_lib {command}") and expected in out
        assert "example" in out


def test_medgan_console_script_is_the_module_main():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["medgan"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
