"""Data-parallel training: 2 logical CPUs (MirroredStrategy) and 2 localhost workers
(MultiWorkerMirroredStrategy) give the single-device losses; kill and resume under a strategy.

Every run is a fresh subprocess: logical devices and the multi-worker runtime must be set up
before TensorFlow initialises. The model is the smoke preset with the dcgan discriminator (all
its BatchNormalization layers are the project's: G's and the paper head's), 32 images, batch 16.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medgan_lib.config import preset
from medgan_lib.rundir import history_path, provenance_path, read_history
from medgan_lib.runs import RunError, train

REPO = Path(__file__).resolve().parents[1]
CONFIG = preset("smoke").replace(discriminator="dcgan", n_images=32, epochs=3)
TIMEOUT = 600
# Two replicas sum their gradients and batch statistics in another order than one device: equal up
# to float32 rounding, which a few steps of GAN training amplify (measured: 1e-7 relative).
RTOL = 1e-4
METRICS = ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy")


def command(run_dir: Path, strategy: str, *extra: str) -> list[str]:
    """``medgan train`` of CONFIG under ``strategy``."""
    return [sys.executable, "-m", "medgan_lib", "train", "--preset", "smoke", "--set", "discriminator=dcgan",
            "--n-images", str(CONFIG.n_images), "--epochs", str(CONFIG.epochs), "--deterministic",
            "--strategy", strategy, *extra, "--run-dir", str(run_dir)]


def environment(**extra: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "MEDGAN_LOGICAL_CPUS")}
    return {**base, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def run(run_dir: Path, strategy: str, *options: str, **extra: str) -> Path:
    subprocess.run(command(run_dir, strategy, *options), env=environment(**extra), check=True, timeout=TIMEOUT)
    return run_dir


def metrics(run_dir: Path) -> np.ndarray:
    return np.array([[row[k] for k in METRICS] for row in read_history(history_path(run_dir))])


def distribution(run_dir: Path) -> dict:
    return json.loads(provenance_path(run_dir).read_text())["distribution"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("single") / "run", "default")


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("mirrored") / "run", "mirrored", "--logical-cpus", "2")


def test_two_replicas_give_the_single_device_losses(single, mirrored):
    assert distribution(single) == {"strategy": "default", "replicas": 1, "workers": 1}
    assert distribution(mirrored) == {"strategy": "mirrored", "replicas": 2, "workers": 1}
    ours, theirs = metrics(mirrored), metrics(single)
    assert ours.shape == (CONFIG.epochs, len(METRICS))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL)
    assert not np.allclose(ours[0], ours[-1], rtol=RTOL)  # the losses moved: the comparison means something


def test_sigkill_then_resume_under_the_strategy_equals_uninterrupted(mirrored, tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed, "mirrored"), env=environment(MEDGAN_LOGICAL_CPUS="2"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pointer = killed / "checkpoints" / "latest.json"
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and process.poll() is None and not pointer.exists():
            time.sleep(0.02)
        assert process.poll() is None, "the run finished (or failed) before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert json.loads(pointer.read_text())["epoch"] < CONFIG.epochs
    run(killed, "mirrored", MEDGAN_LOGICAL_CPUS="2")
    np.testing.assert_array_equal(metrics(killed), metrics(mirrored))
    assert len(json.loads(provenance_path(killed).read_text())["sessions"]) == 2


def test_resuming_on_another_replica_count_is_refused(mirrored, tmp_path):
    with pytest.raises(RunError, match="2 replica.*default on 1"):
        train(CONFIG, mirrored, progress=False)


def test_two_localhost_workers_write_one_run_directory(single, tmp_path):
    run_dir, scratch = tmp_path / "run", tmp_path / "worker_tmp"
    scratch.mkdir()
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    workers = [
        subprocess.Popen(command(run_dir, "multiworker"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=environment(TMPDIR=str(scratch),
                                         TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})))
        for i in range(2)
    ]
    try:
        codes = [w.wait(timeout=TIMEOUT) for w in workers]
    finally:
        for w in workers:
            w.kill()
            w.wait()
    assert codes == [0, 0], [w.stderr.read().decode()[-2000:] for w in workers]
    assert distribution(run_dir) == {"strategy": "multiworker", "replicas": 2, "workers": 2}
    assert list(scratch.iterdir()) == []  # worker 1 wrote only into its temporary copy, since removed
    np.testing.assert_allclose(metrics(run_dir), metrics(single), rtol=RTOL)
