"""``export``: the generator as a SavedModel that plain TensorFlow loads without medgan_lib or Addons."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medgan_lib.__main__ import main
from medgan_lib.export import export_saved_model
from medgan_lib.generate import sampling_snapshot, to_unit
from medgan_lib.generator import build_generator
from medgan_lib.rundir import load_weights_file, read_config
from medgan_lib.sampling import generate_images, latent_batch

TOLERANCE = 1e-5  # max abs difference allowed between the SavedModel and the in-process generator, in [0, 1]

# Run in a fresh interpreter: importing medgan_lib or tensorflow_addons raises ImportError.
PLAIN_TENSORFLOW = """
import importlib.abc, json, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("medgan_lib", "tensorflow_addons"):
            raise ImportError(f"{name} is blocked in this process")
        return None

sys.meta_path.insert(0, Blocked())
blocked = []
for name in ("medgan_lib", "tensorflow_addons"):
    try:
        __import__(name)
    except ImportError:
        blocked.append(name)
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
signature = model.signatures["serving_default"]
for path in sys.argv[2:]:  # latent batches z_N.npy -> images_N.npy
    images = signature(latents=tf.constant(np.load(path)))["images"].numpy()
    np.save(path.replace("z_", "images_"), images)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("medgan_lib", "tensorflow_addons"))
print(json.dumps({"blocked": blocked, "loaded": loaded, "inputs": str(signature.structured_input_signature)}))
"""


@pytest.fixture(scope="module")
def exported(snapshot_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "generator"
    assert main(["export", "--run-dir", str(snapshot_run), "--out", str(out)]) == 0
    return out


def test_saved_model_runs_in_plain_tensorflow_and_matches_the_generator(snapshot_run, exported, tmp_path):
    config = read_config(snapshot_run)
    generator = build_generator(config)
    load_weights_file(generator, sampling_snapshot(snapshot_run).path)
    batches = {n: latent_batch(n, n, config.latent_dim) for n in (1, 5)}  # any batch size
    for n, z in batches.items():
        np.save(tmp_path / f"z_{n}.npy", z)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", PLAIN_TENSORFLOW, str(exported / "saved_model"),
                          *[str(tmp_path / f"z_{n}.npy") for n in batches]],
                         cwd=tmp_path, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["blocked"] == ["medgan_lib", "tensorflow_addons"] and report["loaded"] == []
    for n, z in batches.items():
        images = np.load(tmp_path / f"images_{n}.npy")
        assert images.shape == (n, 32, 32, 1) and images.dtype == np.float32
        expected = to_unit(generate_images(generator, z))
        assert np.abs(images - expected).max() < TOLERANCE
        assert images.min() >= 0.0 and images.max() <= 1.0


def test_metadata_and_readme_say_how_to_call_it(exported, snapshot_run):
    metadata = json.loads((exported / "metadata.json").read_text())
    assert (metadata["latent_dim"], metadata["image_shape"], metadata["epoch"]) == (32, [32, 32, 1], 3)
    assert metadata["input"]["shape"] == [None, 32] and metadata["output"]["range"] == [0.0, 1.0]
    assert metadata["run"] == str(snapshot_run.resolve()) and metadata["weights"]["kind"] == "generator"
    readme = (exported / "README.txt").read_text()
    assert 'signatures["serving_default"]' in readme and "[batch, 32, 32, 1] in [0, 1]" in readme
    assert (exported / "config.json").read_text() == (snapshot_run / "config.json").read_text()


def test_export_refuses_a_used_directory_and_a_run_without_snapshots(snapshot_run, exported, tmp_path, capsys):
    assert main(["export", "--run-dir", str(snapshot_run), "--out", str(exported)]) == 2
    assert "already holds" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((snapshot_run / "config.json").read_text())
    assert main(["export", "--run-dir", str(bare), "--out", str(tmp_path / "o")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "has no generator snapshots" in errors[0]
    metadata = export_saved_model(snapshot_run, exported, epoch=1, overwrite=True)
    assert metadata["epoch"] == 1 and json.loads((exported / "metadata.json").read_text())["epoch"] == 1
