"""A keypoint tracker: a compact U-Net regressing landmark heatmaps (soft-argmax), plus a presence head.

The model (:func:`build_tracker`) maps a grayscale frame in [-1, 1] to

* ``xy``: (n, k, 2) pixel coordinates, the expectation of a spatial softmax over heatmap logits
  computed at half the input resolution (soft-argmax, as DSNT / integral regression), trained
  with the mean pixel distance over the landmarks present (``heatmaps`` is that softmax, for
  inspection);
* ``presence``: (n, k) logits from the bottleneck's global average, trained with binary
  cross-entropy: is the landmark in the frame (the phantom's valve is there in about half).

A stride-2 stem, ``depth`` U-Net levels with GroupNormalization (the same function in training
and inference; BatchNormalization's lagging moving statistics cost 3.9 px of a 0.5 px training
error in a 300-step run here) and skip connections back to half resolution.

Presence comes from the presence head (logit > 0). Training uses
Keras ``fit`` on batches drawn as a function of (seed, epoch, batch), each epoch a fixed number
of optimiser steps, with optional classic augmentation (horizontal flips that swap the
left/right annulus points, integer shifts, intensity changes), so runs of equal ``steps`` see
equal numbers of optimiser steps whatever their training set size.

A tracker run directory holds ``config.json`` (the :class:`TrackerConfig` and the training
data's fingerprint), ``history.csv`` (per epoch: losses and seconds) and ``checkpoints/``
(model and optimizer after an epoch, written under a temporary name, renamed, then published
through ``latest.json``). Rerunning resumes after the last published epoch and ends with what
an uninterrupted run gives.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from .checkpoints import PublishedStates
from .landmarks import stack_landmarks, visible
from .phantom import LANDMARK_NAMES, PhantomSet
from .rundir import checkpoints_dir, history_csv, history_path, read_history, write_atomic

AUGMENTATIONS = ("flip", "shift", "intensity")
MAX_SHIFT = 4  # pixels, each axis
HISTORY_FIELDS = ("epoch", "loss", "xy_loss", "presence_loss", "seconds")
PCK_RADIUS = 3.0  # pixels
OUTPUT_STRIDE = 2  # heatmaps at half the input resolution (coordinates are sub-pixel anyway)
GROUPS = 4  # GroupNormalization groups per convolution (batch-independent: same in training and inference)


class TrackerRunError(RuntimeError):
    """A tracker run directory that cannot be used as asked (other config or other data)."""


@dataclass(frozen=True)
class TrackerConfig:
    """Everything that determines a tracker run, together with its training data."""

    image_size: int = 64
    landmarks: tuple[str, ...] = LANDMARK_NAMES
    base_filters: int = 8  # filters of the first U-Net level, doubled per level
    depth: int = 2  # pooling levels after the stride-2 stem (64 px -> 32 -> 8 px bottleneck)
    presence_weight: float = 1.0
    batch_size: int = 32
    steps: int = 600  # optimiser steps in total
    steps_per_epoch: int = 100
    learning_rate: float = 1e-3
    augment: tuple[str, ...] = ()  # subset of AUGMENTATIONS
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; choose from {AUGMENTATIONS}")
        for name in ("batch_size", "steps", "steps_per_epoch", "base_filters", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps % self.steps_per_epoch:
            raise ValueError(f"steps ({self.steps}) must be a multiple of steps_per_epoch ({self.steps_per_epoch})")

    @property
    def epochs(self) -> int:
        return self.steps // self.steps_per_epoch

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["landmarks"], d["augment"] = list(self.landmarks), list(self.augment)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrackerConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        return cls(**kwargs)


@dataclass(frozen=True)
class LabelledFrames:
    """Frames with their landmarks: images (n, s, s, 1) in [-1, 1], xy (n, k, 2) pixels, present (n, k)."""

    images: np.ndarray
    xy: np.ndarray
    present: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.xy.shape[:1] != (n,) or self.present.shape != self.xy.shape[:2]:
            raise ValueError(f"inconsistent shapes: images {self.images.shape}, xy {self.xy.shape}, "
                             f"present {self.present.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray | slice) -> "LabelledFrames":
        return LabelledFrames(self.images[index], self.xy[index], self.present[index])

    def fingerprint(self) -> str:
        """sha256 of the images, coordinates and presence."""
        digest = hashlib.sha256()
        for array in (self.images.astype(np.float32), np.nan_to_num(self.xy.astype(np.float32)), self.present):
            digest.update(repr(array.shape).encode())
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()

    @classmethod
    def concat(cls, parts: list["LabelledFrames"]) -> "LabelledFrames":
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "xy", "present")))

    @classmethod
    def from_phantom(cls, phantom: PhantomSet) -> "LabelledFrames":
        """A phantom set (images in [0, 1]) as tracker frames in [-1, 1]."""
        xy, present = stack_landmarks(phantom.landmarks)
        size = phantom.images.shape[1]
        images = (phantom.images[..., None] * np.float32(2) - np.float32(1)).astype(np.float32)
        return cls(images, np.nan_to_num(xy), visible(xy, present, size))


# ----------------------------------------------------------------------------- model


def _conv_block(x: tf.Tensor, filters: int, name: str) -> tf.Tensor:
    for i in (1, 2):
        x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = tf.keras.layers.GroupNormalization(min(GROUPS, filters), name=f"{name}_gn{i}")(x)
        x = tf.keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


class SoftArgmax(tf.keras.layers.Layer):
    """Spatial softmax of heatmap logits (n, h, w, k) and its expected pixel coordinates (n, k, 2)."""

    def call(self, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shape = tf.shape(logits)
        h, w, k = shape[1], shape[2], shape[3]
        flat = tf.reshape(tf.transpose(logits, [0, 3, 1, 2]), [shape[0], k, h * w])
        probs = tf.reshape(tf.nn.softmax(flat, axis=-1), [shape[0], k, h, w])
        xs = tf.cast(tf.range(w), logits.dtype)
        ys = tf.cast(tf.range(h), logits.dtype)
        x = tf.reduce_sum(tf.reduce_sum(probs, axis=2) * xs, axis=-1)
        y = tf.reduce_sum(tf.reduce_sum(probs, axis=3) * ys, axis=-1)
        return tf.transpose(probs, [0, 2, 3, 1]), tf.stack([x, y], axis=-1)


def build_tracker(config: TrackerConfig) -> tf.keras.Model:
    """The U-Net: frames (n, s, s, 1) -> {"xy": (n, k, 2) pixels, "presence": (n, k) logits,
    "heatmaps": (n, s/2, s/2, k) spatial softmax}."""
    if config.image_size % (OUTPUT_STRIDE * 2**config.depth):
        raise ValueError(f"image_size {config.image_size} must be divisible by {OUTPUT_STRIDE * 2**config.depth}")
    k = len(config.landmarks)
    frames = tf.keras.Input((config.image_size, config.image_size, 1), name="frames")
    x = tf.keras.layers.Conv2D(config.base_filters, 3, strides=OUTPUT_STRIDE, padding="same", name="stem")(frames)
    x = tf.keras.layers.ReLU(name="stem_relu")(x)
    skips = []
    for level in range(config.depth):
        x = _conv_block(x, config.base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = tf.keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(x, config.base_filters * 2**config.depth, "bottleneck")
    presence = tf.keras.layers.GlobalAveragePooling2D(name="pooled")(x)
    presence = tf.keras.layers.Dense(k, name="presence")(presence)
    for level in reversed(range(config.depth)):
        x = tf.keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(x)
        x = tf.keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, config.base_filters * 2**level, f"dec{level}")
    logits = tf.keras.layers.Conv2D(k, 1, name="heatmap_logits")(x)
    heatmaps, xy = SoftArgmax(name="soft_argmax")(logits)
    # cell j of the stride-2 grid covers input pixels 2j and 2j + 1: its centre is at 2j + 0.5
    xy = tf.keras.layers.Rescaling(OUTPUT_STRIDE, (OUTPUT_STRIDE - 1) / 2, name="to_input_pixels")(xy)
    heatmaps = tf.keras.layers.Identity(name="heatmaps")(heatmaps)
    xy = tf.keras.layers.Identity(name="xy")(xy)
    return tf.keras.Model(frames, {"xy": xy, "presence": presence, "heatmaps": heatmaps}, name="tracker")


def coordinate_loss(target: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
    """Mean pixel distance over present landmarks; ``target`` (n, k, 3) holds x, y and presence."""
    mask = target[..., 2]
    distance = tf.sqrt(tf.reduce_sum(tf.square(prediction - target[..., :2]), axis=-1) + 1e-6)
    return tf.reduce_sum(mask * distance, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)


def new_tracker(config: TrackerConfig) -> tf.keras.Model:
    """A freshly initialised, compiled tracker with its optimizer built (so checkpoints restore into it)."""
    model = build_tracker(config)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.learning_rate),
        loss={"xy": coordinate_loss, "presence": tf.keras.losses.BinaryCrossentropy(from_logits=True)},
        loss_weights={"xy": 1.0, "presence": config.presence_weight},
    )
    model.optimizer.build(model.trainable_variables)
    return model


# ----------------------------------------------------------------------------- batches


def augment_batch(rng: np.random.Generator, frames: LabelledFrames, kinds: tuple[str, ...],
                  landmarks: tuple[str, ...] = LANDMARK_NAMES) -> LabelledFrames:
    """Classic augmentation of every frame: flips (left/right annulus swapped), shifts, intensity."""
    images, xy, present = frames.images.copy(), frames.xy.copy(), frames.present.copy()
    n, size = len(images), images.shape[1]
    if "flip" in kinds:
        flip = rng.random(n) < 0.5
        images[flip] = images[flip, :, ::-1]
        xy[flip, :, 0] = size - 1 - xy[flip, :, 0]
        if {"annulus_left", "annulus_right"} <= set(landmarks):
            pair = [landmarks.index("annulus_left"), landmarks.index("annulus_right")]
            for a in (xy, present):
                a[np.ix_(flip, pair)] = a[np.ix_(flip, pair[::-1])]
    if "shift" in kinds:
        shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(n, 2))
        padded = np.pad(images, ((0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT), (0, 0)), mode="edge")
        for i, (dx, dy) in enumerate(shifts):
            images[i] = padded[i, MAX_SHIFT - dy:MAX_SHIFT - dy + size, MAX_SHIFT - dx:MAX_SHIFT - dx + size]
        xy = xy + shifts[:, None, :]
        present = visible(xy, present, size)
    if "intensity" in kinds:
        unit = (images + 1) / 2
        gamma = rng.uniform(0.7, 1.4, (n, 1, 1, 1))
        gain = rng.uniform(0.8, 1.2, (n, 1, 1, 1))
        bias = rng.uniform(-0.1, 0.1, (n, 1, 1, 1))
        images = (np.clip(gain * unit**gamma + bias, 0, 1) * 2 - 1).astype(np.float32)
    return LabelledFrames(images.astype(np.float32), xy.astype(np.float32), present)


class EpochBatches(tf.keras.utils.Sequence):
    """One epoch's ``steps_per_epoch`` batches, each a function of (seed, epoch, batch index)."""

    def __init__(self, frames: LabelledFrames, config: TrackerConfig, epoch: int) -> None:
        super().__init__()
        self.frames, self.config, self.epoch = frames, config, epoch
        need = config.steps_per_epoch * config.batch_size
        rng = np.random.default_rng([config.seed, epoch])
        rounds = -(-need // len(frames))
        self.order = np.concatenate([rng.permutation(len(frames)) for _ in range(rounds)])[:need]

    def __len__(self) -> int:
        return self.config.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        c = self.config
        batch = self.frames.subset(self.order[index * c.batch_size:(index + 1) * c.batch_size])
        if c.augment:
            batch = augment_batch(np.random.default_rng([c.seed, self.epoch, index, 1]), batch, c.augment, c.landmarks)
        present = batch.present.astype(np.float32)
        targets = np.concatenate([np.where(batch.present[..., None], batch.xy, 0), present[..., None]], axis=-1)
        return batch.images, {"xy": targets.astype(np.float32), "presence": present}


# ----------------------------------------------------------------------------- prediction, metrics


@dataclass(frozen=True)
class Predictions:
    """Tracker output read back: xy (n, k, 2) pixels, present (n, k), heatmaps (n, s, s, k) in [0, 1]."""

    xy: np.ndarray
    present: np.ndarray
    heatmaps: np.ndarray


def predict(model: tf.keras.Model, images: np.ndarray, batch_size: int = 128) -> Predictions:
    """Landmarks of ``images`` (n, s, s, 1) in [-1, 1]: decoded heatmaps, presence from the head."""
    out = model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return Predictions(np.asarray(out["xy"]), np.asarray(out["presence"]) > 0.0, np.asarray(out["heatmaps"]))


def landmark_metrics(xy: np.ndarray, present: np.ndarray, truth: LabelledFrames) -> dict[str, float]:
    """Errors of predicted ``xy``/``present`` against ``truth``.

    ``error_px``: mean Euclidean distance over the landmarks present in the truth (whatever the
    predicted presence); ``error_pct``: the same as % of the frame width; ``pck3``: share of those
    within ``PCK_RADIUS`` (3) pixels; ``presence_accuracy``: share of all (frame, landmark) slots
    whose predicted presence equals the truth's.
    """
    width = truth.images.shape[2]
    distance = np.linalg.norm(np.asarray(xy, np.float64) - truth.xy, axis=-1)[truth.present]
    return {
        "error_px": float(distance.mean()),
        "error_pct": float(100 * distance.mean() / width),
        "pck3": float((distance <= PCK_RADIUS).mean()),
        "presence_accuracy": float((np.asarray(present, bool) == truth.present).mean()),
        "n_frames": len(truth),
    }


def evaluate_tracker(model: tf.keras.Model, frames: LabelledFrames) -> dict[str, float]:
    predictions = predict(model, frames.images)
    return landmark_metrics(predictions.xy, predictions.present, frames)


def mean_position_baseline(train: LabelledFrames, test: LabelledFrames) -> dict[str, float]:
    """The metrics of predicting every landmark at its mean training position, present if present in most frames."""
    counts = np.maximum(train.present.sum(axis=0), 1)[:, None]
    mean = np.where(train.present[..., None], train.xy, 0).sum(axis=0) / counts
    present = np.broadcast_to(train.present.mean(axis=0) >= 0.5, test.present.shape)
    return landmark_metrics(np.broadcast_to(mean, test.xy.shape), present, test)


# ----------------------------------------------------------------------------- run directory


def _checkpoints(run_dir: Path, model: tf.keras.Model) -> PublishedStates:
    """Model and optimizer after an epoch in ``run_dir/checkpoints`` (the last one kept)."""
    state = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    return PublishedStates(checkpoints_dir(run_dir), state, HISTORY_FIELDS, keep=1)


def read_tracker_history(run_dir: str | os.PathLike) -> list[dict]:
    """``history.csv`` of a tracker run as rows; empty if missing."""
    path = history_path(run_dir)
    return read_history(path) if path.exists() else []


def _check_run(run_dir: Path, record: dict) -> None:
    path = run_dir / "config.json"
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    differences = [f"{k}: run has {saved.get(k)!r}, asked {v!r}" for k, v in record.items() if saved.get(k) != v]
    if differences:
        raise TrackerRunError(f"{run_dir} holds a tracker run with another configuration or data; use another "
                              "run directory. Differences:\n  " + "\n  ".join(differences))


def load_tracker(run_dir: str | os.PathLike) -> tf.keras.Model:
    """The tracker of a run directory with its last published weights."""
    run_dir = Path(run_dir)
    config = TrackerConfig.from_dict(json.loads((run_dir / "config.json").read_text())["config"])
    model = new_tracker(config)
    _checkpoints(run_dir, model).restore()
    return model


def reinitialise(model: tf.keras.Model, config: TrackerConfig) -> tf.keras.Model:
    """``model`` (from :func:`new_tracker` of the same architecture) with the initial weights a new
    tracker of ``config`` gets and a fresh optimizer state; its traced training step is kept."""
    tf.keras.utils.set_random_seed(config.seed)
    model.set_weights(build_tracker(config).get_weights())
    for variable in model.optimizer.variables:
        variable.assign(tf.zeros_like(variable))
    return model


def train_tracker(config: TrackerConfig, frames: LabelledFrames, run_dir: str | os.PathLike,
                  stop_after_epoch: int | None = None, reuse: tf.keras.Model | None = None) -> tf.keras.Model:
    """Train (or resume) a tracker on ``frames`` in ``run_dir``; returns the model.

    ``stop_after_epoch`` ends the session early (as an interruption would); rerunning resumes.
    ``reuse``: a tracker of the same architecture and learning rate to re-initialise and train in
    place instead of building a new one (saves tracing the training step again; the earlier
    model's weights are overwritten).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if frames.images.shape[1] != config.image_size:
        raise ValueError(f"frames are {frames.images.shape[1]} px, the config says {config.image_size}")
    record = {"config": config.to_dict(), "data_fingerprint": frames.fingerprint(), "n_frames": len(frames)}
    _check_run(run_dir, record)
    write_atomic(run_dir / "config.json", json.dumps(record, indent=2))
    if reuse is None:
        tf.keras.utils.set_random_seed(config.seed)
        model = new_tracker(config)
    else:
        model = reinitialise(reuse, config)
    checkpoints = _checkpoints(run_dir, model)
    history = checkpoints.restore()
    start = len(history)
    last = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    for epoch in range(start + 1, last + 1):
        began = time.perf_counter()
        result = model.fit(EpochBatches(frames, config, epoch), epochs=1, verbose=0, shuffle=False)
        row = {"epoch": epoch, **{k: float(result.history[k][-1]) for k in HISTORY_FIELDS[1:-1]},
               "seconds": round(time.perf_counter() - began, 3)}
        history.append(row)
        checkpoints.save(epoch, history)
        write_atomic(history_path(run_dir), history_csv(history, HISTORY_FIELDS))
    return model
