"""Fault injection at smoke scale: kills, signals, two trainers, damaged checkpoints, bad run-dir
files, read-only and full disks. Every case ends in an exact resume or in one ``error:`` line,
and nothing trained is lost."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medgan_lib.__main__ import main
from medgan_lib.config import preset
from medgan_lib.runlock import LOCK_NAME
from medgan_lib.checkpoints import Checkpoints
from medgan_lib.rundir import read_history
from medgan_lib.runs import build_gan

from conftest import LIGHT_BACKBONE

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6  # the smoke preset checkpoints every epoch of a 6-epoch run (all are snapshot epochs)
ARGS = ("--preset", "smoke", "--epochs", str(EPOCHS), "--n-images", "32", "--backbone", LIGHT_BACKBONE)
CONFIG = preset("smoke").replace(epochs=EPOCHS, n_images=32, backbone=LIGHT_BACKBONE)


def medgan(*args: str, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "medgan_lib", "train", *args, "--run-dir", str(run_dir)]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def train_cli(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(medgan(*ARGS, "--deterministic", run_dir=run_dir), env=env(), capture_output=True,
                          text=True, timeout=900)


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def history(run_dir: Path) -> list[dict]:
    return without_seconds(read_history(run_dir / "history.csv"))


def generator_weights(run_dir: Path, epoch: int) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}
    with h5py.File(run_dir / "checkpoints" / "generator" / f"epoch_{epoch:04d}.weights.h5") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
    return arrays


def assert_same_weights(ours: Path, theirs: Path) -> None:
    a, b = generator_weights(ours, EPOCHS), generator_weights(theirs, EPOCHS)
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def cli_error(capsys, *argv: str) -> str:
    """Run the command line in this process; it must exit 2 with exactly one error line."""
    assert main(list(argv)) == 2
    return one_error_line(capsys.readouterr().err)


def latest_epoch(run_dir: Path) -> int:
    return json.loads((run_dir / "checkpoints" / "latest.json").read_text())["epoch"]


def sessions(run_dir: Path) -> int:
    return len(json.loads((run_dir / "provenance.json").read_text())["sessions"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run that every case is compared with (6 epochs, deterministic: the
    session smoke run has too few epochs to be interrupted twice and resumed)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    out = train_cli(run_dir)
    assert out.returncode == 0, out.stderr
    return run_dir


@pytest.fixture
def copy_of(reference, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    return run_dir


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"the trainer ended before {what}: {process.communicate()[1]}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def rows_written(run_dir: Path, since: float = 0.0) -> int:
    path = run_dir / "history.csv"
    try:
        if path.stat().st_mtime < since:
            return 0
        return len(path.read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


def test_sigkill_sigterm_and_a_second_trainer_end_with_the_uninterrupted_history(reference, tmp_path, capsys):
    run_dir = tmp_path / "run"
    command = medgan(*ARGS, "--deterministic", run_dir=run_dir)

    killed = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: rows_written(run_dir) >= 2, killed, "epoch 2")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    resumed_from = latest_epoch(run_dir)
    assert resumed_from <= 3 and (run_dir / LOCK_NAME).exists()  # a stale lock file, no lock held

    started = time.time()
    terminated = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: rows_written(run_dir, started) > resumed_from, terminated, "an epoch after the resume")
    terminated.send_signal(signal.SIGTERM)
    _, stderr = terminated.communicate(timeout=600)
    assert terminated.returncode == 2
    line = one_error_line(stderr)
    stopped = latest_epoch(run_dir)
    assert f"interrupted (SIGTERM) at epoch {stopped} of {EPOCHS}" in line and "resume with the same command" in line
    assert resumed_from < stopped < EPOCHS
    assert history(run_dir) == history(reference)[:stopped]

    final = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = run_dir / LOCK_NAME
    wait_for(lambda: lock.exists() and f"pid {final.pid} " in lock.read_text(), final, "the lock")
    line = cli_error(capsys, "train", *ARGS, "--run-dir", str(run_dir))
    assert f"pid {final.pid} " in line and LOCK_NAME in line
    _, stderr = final.communicate(timeout=600)
    assert final.returncode == 0, stderr
    assert history(run_dir) == history(reference)
    assert_same_weights(run_dir, reference)
    assert not lock.exists()


def test_the_lock_names_its_holder_and_a_stale_lock_file_does_not_block(tmp_path):
    from medgan_lib.runlock import RunLocked, train_lock

    (tmp_path / LOCK_NAME).write_text("pid 1 on a machine that was killed\n")  # no process holds it
    with train_lock(tmp_path):
        assert f"pid {os.getpid()} " in (tmp_path / LOCK_NAME).read_text()
        with pytest.raises(RunLocked, match=f"pid {os.getpid()} on .*{LOCK_NAME}"):
            with train_lock(tmp_path):
                pass
    assert list(tmp_path.iterdir()) == []
    with train_lock(tmp_path):  # released: free again
        pass


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_asks_to_stop_the_second_stops_at_once(signum):
    from medgan_lib.stopping import StopNow, stop_on_signals

    before = signal.getsignal(signum)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signum)
        time.sleep(0.01)  # let the handler run
        assert stop.signal_name == signal.Signals(signum).name
        with pytest.raises(StopNow):
            os.kill(os.getpid(), signum)
            time.sleep(0.01)
    assert signal.getsignal(signum) is before


@pytest.fixture(scope="module")
def gan():
    """The models of the reference run's configuration, to restore damaged checkpoints into."""
    return build_gan(CONFIG)[0]


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def edit_history(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


DAMAGE = {
    "truncated state.data": lambda d: truncate(d / "state.data-00000-of-00001"),
    "bit-flipped state.data": lambda d: flip_bit(d / "state.data-00000-of-00001"),
    "truncated index": lambda d: truncate(d / "state.index"),
    "missing directory": lambda d: shutil.rmtree(d),
    "history too short": lambda d: edit_history(d / "history.csv", lambda lines: lines[:-1]),
    "history too long": lambda d: edit_history(d / "history.csv", lambda lines: [*lines, lines[-1].replace("6,", "7,", 1)]),
    "history with a duplicated epoch": lambda d: edit_history(d / "history.csv", lambda lines: [*lines[:3], lines[2], *lines[3:]]),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_latest_checkpoint_falls_back_to_the_older_one_loudly(damage, gan, copy_of, caplog):
    DAMAGE[damage](copy_of / "checkpoints" / f"epoch_{EPOCHS:04d}")
    with caplog.at_level(logging.WARNING, logger="medgan"):
        restored = Checkpoints(copy_of, gan).restore()
    assert without_seconds(restored) == history(copy_of)[:EPOCHS - 1]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"epoch_{EPOCHS:04d}" in warning and f"intact checkpoint of epoch {EPOCHS - 1}" in warning


def test_with_no_intact_checkpoint_left_the_error_names_each(gan, copy_of):
    from medgan_lib.errors import RunError

    for epoch in (EPOCHS - 1, EPOCHS):
        truncate(copy_of / "checkpoints" / f"epoch_{epoch:04d}" / "state.index")
    with pytest.raises(RunError, match=f"no intact checkpoint.*epoch_{EPOCHS:04d}.*epoch_{EPOCHS - 1:04d}"):
        Checkpoints(copy_of, gan).restore()


def test_truncated_state_resumes_from_the_previous_checkpoint_and_ends_with_the_same_history(reference, copy_of):
    DAMAGE["truncated state.data"](copy_of / "checkpoints" / f"epoch_{EPOCHS:04d}")
    edit_history(copy_of / "history.csv", lambda lines: lines[:-2])  # a top-level history that disagrees too
    out = train_cli(copy_of)
    assert out.returncode == 0, out.stderr
    assert f"resuming from the intact checkpoint of epoch {EPOCHS - 1}" in out.stderr
    assert history(copy_of) == history(reference)
    assert_same_weights(copy_of, reference)
    assert sessions(copy_of) == sessions(reference) + 1
    assert sorted(p.name for p in (copy_of / "checkpoints").glob("epoch_*")) == ["epoch_0005", "epoch_0006"]


@pytest.mark.parametrize("target", ["../../elsewhere/checkpoints/epoch_0006", "/tmp/other_run/epoch_0006",
                                    "epoch_0005"])
def test_latest_json_naming_anything_but_its_own_checkpoint_is_refused(target, copy_of, capsys):
    pointer = copy_of / "checkpoints" / "latest.json"
    pointer.write_text(json.dumps({"epoch": EPOCHS, "dir": target}))
    before = sessions(copy_of)
    line = cli_error(capsys, "train", *ARGS, "--run-dir", str(copy_of))
    assert str(pointer) in line and "'dir'" in line and target in line
    assert sessions(copy_of) == before and not (copy_of / LOCK_NAME).exists()


@pytest.mark.parametrize("name, content, expected", [
    ("config.json", "{not json", "malformed JSON"),
    ("config.json", '{"preset": "smoke", "epochs": 0}', "field 'epochs' must be >= 1"),
    ("provenance.json", "", "malformed JSON"),
    ("provenance.json", '{"discriminator": {"mode": "scratch"}, "sessions": []}', "field 'dataset' is missing"),
    ("checkpoints/latest.json", "[1, 2]", "expected a JSON object"),
    ("checkpoints/latest.json", '{"epoch": "six", "dir": "epoch_0006"}', "field 'epoch' has the wrong type"),
])
def test_malformed_run_dir_json_is_one_line_naming_the_file_and_field(name, content, expected, copy_of, capsys):
    (copy_of / name).write_text(content)
    line = cli_error(capsys, "train", *ARGS, "--run-dir", str(copy_of))
    assert str(copy_of / name) in line and expected in line


def test_run_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    line = cli_error(capsys, "train", *ARGS, "--run-dir", str(path))
    assert str(path) in line and "is a file" in line
    assert path.read_text() == "mine"


FAILED_CHECKS = {  # extra train options -> a word of the error
    "missing data folder": (("--data", "folder:{tmp}/missing"), "missing"),
    "fewer images than one batch": (("--n-images", "8", "--batch-size", "16"), "batch"),
    "no ImageNet weights for transfer": (("--d-mode", "transfer"), "weights"),
}


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("check", FAILED_CHECKS)
def test_a_run_that_fails_its_checks_leaves_the_directory_as_it_was(check, existing, tmp_path, capsys, offline):
    run_dir = tmp_path / "new" / "run"
    if existing:
        run_dir.mkdir(parents=True)
    options, word = FAILED_CHECKS[check]
    line = cli_error(capsys, "train", *ARGS, *(o.format(tmp=tmp_path) for o in options), "--run-dir", str(run_dir))
    assert word in line
    assert (list(run_dir.iterdir()) == []) if existing else not (tmp_path / "new").exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--epochs", "0", "--epochs: must be >= 1, got 0"),
    ("--batch-size", "0", "--batch-size: must be >= 1, got 0"),
    ("--n-images", "-1", "--n-images: must be >= 1, got -1"),
    ("--backbone", "MobileNetV2@abc", "--backbone: width multiplier (alpha) after '@' must be a positive number"),
])
def test_option_out_of_range_is_one_line_naming_it(option, value, expected, tmp_path, capsys):
    line = cli_error(capsys, "train", "--preset", "smoke", option, value, "--run-dir", str(tmp_path / "run"))
    assert expected in line
    assert not (tmp_path / "run").exists()


def test_truncated_generator_snapshot_under_evaluate_names_the_file(copy_of, capsys):
    snapshot = copy_of / "checkpoints" / "generator" / f"epoch_{EPOCHS:04d}.weights.h5"
    truncate(snapshot)
    line = cli_error(capsys, "evaluate", "--run-dir", str(copy_of), "--epochs", str(EPOCHS), "--n", "8")
    assert str(snapshot) in line and "unreadable weights file" in line


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs mounted at a temporary directory (root only); yields (mount point, remount)."""
    point = tmp_path / "mnt"
    point.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(point)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'mount failed'}): needs root")

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)

    try:
        yield point, remount
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_read_only_run_dir_is_one_line_and_untouched(reference, tmpfs, capsys):
    point, remount = tmpfs
    remount("size=64m")
    run_dir = point / "run"
    shutil.copytree(reference, run_dir)
    remount("ro")
    line = cli_error(capsys, "train", *ARGS, "--run-dir", str(run_dir))
    assert str(run_dir) in line and "Read-only file system" in line and "writable run directory" in line
    assert history(run_dir) == history(reference)


def test_disk_full_keeps_the_last_checkpoint_and_the_resume_is_exact(reference, tmpfs):
    point, remount = tmpfs  # 5 MB: room for one 2.9 MB checkpoint, not for the next beside it
    run_dir = point / "run"
    out = train_cli(run_dir)
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    intact = latest_epoch(run_dir)
    assert f"no space left on {run_dir}; the last checkpoint, epoch {intact}, is intact" in line
    assert 1 <= intact < EPOCHS
    assert not list((run_dir / "checkpoints").glob(".tmp_*"))
    remount("size=64m")
    out = train_cli(run_dir)
    assert out.returncode == 0, out.stderr
    assert history(run_dir) == history(reference)
    assert_same_weights(run_dir, reference)
