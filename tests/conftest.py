"""Shared test settings and fixtures: quiet TensorFlow, the offline weights switch, test images,
and ONE trained smoke run for the whole session."""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from medgan_lib import pretrained  # noqa: E402  (after the log level is set)
from medgan_lib.config import preset  # noqa: E402
from medgan_lib.data import load_images  # noqa: E402
from medgan_lib.phantom import make_phantom  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SMOKE_SIZE = preset("smoke").image_size  # 32
SMOKE_RUN_FRAMES = 64  # phantom frames (seed 4) of the shared smoke run, as an npz: file
# The paper discriminator's lightest backbone, for tests of run directories, resumes and logs, where the
# backbone is not the point: the same path (scratch backbone with BatchNorm, the paper's head), but
# MobileNet (28 layers) builds and traces in a fraction of the smoke preset's MobileNetV2's time.
LIGHT_BACKBONE = "MobileNet@0.25"


def medgan(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m medgan_lib ARGS`` in a subprocess, output captured."""
    return subprocess.run([sys.executable, "-m", "medgan_lib", *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """No ImageNet weights anywhere in this process: empty weights dir and KERAS_HOME, no downloads."""
    weights_dir, keras_home = tmp_path / "weights", tmp_path / "keras_home"
    weights_dir.mkdir()
    keras_home.mkdir()
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(weights_dir))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(pretrained, "_host_reachable", lambda url: False)
    return {"weights_dir": weights_dir, "keras_home": keras_home}


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a subprocess that finds no ImageNet weights (empty weights dir and Keras cache)."""
    home = tmp_path_factory.mktemp("offline")
    (home / "weights").mkdir()
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
            pretrained.WEIGHTS_DIR_ENV: str(home / "weights"), "KERAS_HOME": str(home)}


@pytest.fixture(scope="session")
def smoke_run_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The data spec of the shared smoke run: an ``npz:`` file of 64 phantom frames."""
    folder = tmp_path_factory.mktemp("smoke_data")
    frames = make_phantom(SMOKE_RUN_FRAMES, SMOKE_SIZE, seed=4).images
    np.savez(folder / "frames.npz", images=(frames * 255).astype(np.uint8))
    return f"npz:{folder / 'frames.npz'}"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, offline_env: dict[str, str], smoke_run_data: str) -> Path:
    """The smoke preset trained once per session by the CLI, offline, on ``smoke_run_data``."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    out = medgan("train", "--preset", "smoke", "--data", smoke_run_data, "--run-dir", str(run_dir), env=offline_env)
    assert out.returncode == 0, out.stderr
    return run_dir


@pytest.fixture(scope="session")
def phantom_images() -> Callable[..., np.ndarray]:
    """``phantom_images(n, size=32)``: ``n`` grey phantom frames in [-1, 1] through the data loader."""
    return lambda n, size=SMOKE_SIZE: load_images(f"phantom:{n}", size, 1).images


@pytest.fixture(scope="session")
def random_images() -> Callable[..., np.ndarray]:
    """``random_images(n, size=32, channels=1, seed=0)``: uniform noise images in [-1, 1]."""
    def make(n: int, size: int = SMOKE_SIZE, channels: int = 1, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)

    return make


def write_snapshot_run(run_dir: Path, channels: int = 1, epochs: tuple[int, ...] = (1, 3)) -> Path:
    """A run directory as training leaves it for readers: config.json, provenance.json and smoke-preset
    generator snapshots at ``epochs`` (random weights, a different seed per epoch), without training."""
    import tensorflow as tf

    from medgan_lib.config import preset
    from medgan_lib.generator import build_generator
    from medgan_lib.rundir import generator_snapshot_path

    config = preset("smoke").replace(channels=channels)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(config.to_json())
    (run_dir / "provenance.json").write_text(json.dumps({"created": "test", "sessions": []}))
    for epoch in epochs:
        tf.keras.utils.set_random_seed(epoch)
        path = generator_snapshot_path(run_dir, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        build_generator(config).save_weights(str(path))
    return run_dir


@pytest.fixture(scope="session")
def snapshot_run(tmp_path_factory) -> Path:
    """A grayscale smoke-preset run with generator snapshots at epochs 1 and 3 (see write_snapshot_run)."""
    return write_snapshot_run(tmp_path_factory.mktemp("snapshot_run") / "run")
