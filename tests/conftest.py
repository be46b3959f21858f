"""Shared test settings: quiet TensorFlow and deterministic ops."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def write_snapshot_run(run_dir: Path, channels: int = 1, epochs: tuple[int, ...] = (1, 3)) -> Path:
    """A run directory as training leaves it for readers: config.json, provenance.json and smoke-preset
    generator snapshots at ``epochs`` (random weights, a different seed per epoch), without training."""
    import tensorflow as tf

    from medgan_lib.config import preset
    from medgan_lib.generator import build_generator
    from medgan_lib.runs import generator_snapshot_path

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
