"""A generator snapshot as a TensorFlow SavedModel: ``medgan export --run-dir R --out DIR``.

The SavedModel holds the generator's graph and weights with one serving signature,
``serving_default(latents)``: a float32 batch ``[None, latent_dim]`` of N(0, 1) latent vectors in,
``{"images": float32 [None, H, W, C] in [0, 1]}`` out (NHWC; ``(tanh output + 1) / 2``, inference
mode). It loads with ``tf.saved_model.load`` in plain TensorFlow: neither medgan_lib nor TensorFlow
Addons is needed. Beside it: ``metadata.json`` (latent size, image shape, run, epoch, weights),
``README.txt`` (how to call it) and copies of the run's ``config.json`` and ``provenance.json``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

from . import __version__
from .generate import OWN_FILES, prepare_output, sampling_snapshot
from .rundir import read_config, snapshot_generator, write_atomic
from .runs import git_commit

SIGNATURE = "serving_default"
SAVED_MODEL = "saved_model"
EXPORT_FILES = (SAVED_MODEL, "metadata.json", "README.txt")

README = """medgan generator, exported as a TensorFlow SavedModel
=====================================================

run:    {run}
epoch:  {epoch} ({kind} weights)
input:  latents, float32 [batch, {latent_dim}], standard normal N(0, 1)
output: images,  float32 [batch, {height}, {width}, {channels}] in [0, 1] (NHWC; {colour})

Needs TensorFlow only (written with TensorFlow {tf_version}); no medgan, no TensorFlow Addons:

    import numpy as np, tensorflow as tf
    model = tf.saved_model.load("{saved_model}")
    generate = model.signatures["{signature}"]
    z = np.random.default_rng(0).standard_normal((8, {latent_dim})).astype("float32")
    images = generate(latents=tf.constant(z))["images"].numpy()   # (8, {height}, {width}, {channels})

The images are synthetic: they show no patient.
"""


def export_saved_model(run_dir: str | os.PathLike, out: str | os.PathLike, epoch: int | None = None,
                       overwrite: bool = False) -> dict[str, Any]:
    """Write the SavedModel of the run's sampling snapshot (see the module docstring); returns its metadata."""
    import tensorflow as tf

    run_dir, out = Path(run_dir), Path(out)
    snapshot = sampling_snapshot(run_dir, epoch)
    config = read_config(run_dir)
    prepare_output(out, overwrite, own=(*EXPORT_FILES, *OWN_FILES))
    generator = snapshot_generator(run_dir, snapshot.epoch, config)
    module = tf.Module()
    module.generator = generator

    @tf.function(input_signature=[tf.TensorSpec([None, config.latent_dim], tf.float32, name="latents")])
    def serve(latents):
        images = tf.cast(generator(latents, training=False), tf.float32)
        return {"images": tf.clip_by_value((images + 1.0) / 2.0, 0.0, 1.0)}

    module.serve = serve
    tf.saved_model.save(module, str(out / SAVED_MODEL), signatures={SIGNATURE: serve})

    shape = [config.image_size, config.image_size, config.channels]
    metadata = {
        "format": "TensorFlow SavedModel",
        "saved_model": str((out / SAVED_MODEL).resolve()),
        "signature": SIGNATURE,
        "input": {"name": "latents", "dtype": "float32", "shape": [None, config.latent_dim],
                  "distribution": "standard normal"},
        "output": {"name": "images", "dtype": "float32", "shape": [None, *shape], "layout": "NHWC",
                   "range": [0.0, 1.0]},
        "latent_dim": config.latent_dim,
        "image_shape": shape,
        "run": str(run_dir.resolve()),
        "preset": config.preset,
        "epoch": snapshot.epoch,
        "weights": {"kind": snapshot.kind, "file": str(snapshot.path.resolve())},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "medgan": {"version": __version__, "git_commit": git_commit()},
    }
    write_atomic(out / "metadata.json", json.dumps(metadata, indent=2))
    write_atomic(out / "README.txt", README.format(
        run=metadata["run"], epoch=snapshot.epoch, kind=snapshot.kind, latent_dim=config.latent_dim,
        height=shape[0], width=shape[1], channels=shape[2], colour="grayscale" if shape[2] == 1 else "RGB",
        tf_version=tf.__version__, saved_model=metadata["saved_model"], signature=SIGNATURE))
    for name in ("config.json", "provenance.json"):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out / name)
    return metadata
