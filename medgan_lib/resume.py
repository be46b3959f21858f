"""Which checkpoint a run resumes from: the published one if it is intact, else the newest intact older one.

``checkpoints/latest.json`` names the published checkpoint: ``{"epoch": N, "dir": "epoch_NNNN"}``.
It may name only a directory directly inside ``checkpoints/`` whose name matches its epoch; any
other content (another path, ``..``, an absolute path, a missing field) is an error naming the
file, never followed. A checkpoint is intact when its TensorFlow state reads completely (the
bundle's checksums catch truncated and bit-flipped files) and its history holds epochs
1..N, each once and in order. A damaged one is skipped with a WARNING saying what was wrong
and which epoch is used instead.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

from .errors import RunError
from .rundir import json_field, read_json

log = logging.getLogger("medgan")

CHECKPOINT_DIR = re.compile(r"epoch_(\d{4,})")
POINTER_NAME = "latest.json"


class DamagedCheckpoint(RunError):
    """A checkpoint that cannot be read completely or whose history does not fit its epoch."""


def checkpoint_name(epoch: int) -> str:
    """The directory name of the checkpoint after ``epoch``."""
    return f"epoch_{epoch:04d}"


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch of a checkpoint directory name (``epoch_0012`` -> 12), None for other names."""
    match = CHECKPOINT_DIR.fullmatch(path.name)
    return int(match.group(1)) if match else None


def read_pointer(checkpoints_dir: Path) -> tuple[int, Path] | None:
    """The published checkpoint (epoch, directory), None if nothing was published; checked."""
    pointer = checkpoints_dir / POINTER_NAME
    if not pointer.exists():
        return None
    record = read_json(pointer)
    epoch = json_field(record, pointer, "epoch", kind=int)
    name = json_field(record, pointer, "dir", kind=str)
    if name != checkpoint_name(epoch):
        raise RunError(f"{pointer}: field 'dir' must be {checkpoint_name(epoch)!r}, a directory inside "
                       f"{checkpoints_dir} for epoch {epoch}; got {name!r}. Refusing to follow it")
    return epoch, checkpoints_dir / name


def check_history(rows: list[dict], epoch: int, where: Path) -> None:
    """The history of a checkpoint after ``epoch`` must hold epochs 1..epoch, each once, in order."""
    epochs = [row["epoch"] for row in rows]
    if epochs != list(range(1, epoch + 1)):
        shown = epochs if len(epochs) <= 8 else [*epochs[:3], "...", *epochs[-3:]]
        raise DamagedCheckpoint(f"{where}: history has epochs {shown}, expected 1..{epoch} once each")


def restore_newest_intact(
    checkpoints_dir: Path, restore: Callable[[Path], list[dict]]
) -> tuple[int, list[dict]]:
    """Restore the published checkpoint, or the newest intact older one; (epoch, history).

    ``restore(directory)`` loads one checkpoint into the models and returns its history; it
    raises on any damage. (0, []) when nothing was published yet.
    """
    published = read_pointer(checkpoints_dir)
    if published is None:
        return 0, []
    newest, _ = published
    older = sorted((e, p) for p in checkpoints_dir.glob("epoch_*") if (e := checkpoint_epoch(p)) and e < newest)
    problems = []
    for epoch, directory in [published, *reversed(older)]:
        try:
            if not directory.is_dir():
                raise DamagedCheckpoint(f"{directory}: directory missing")
            history = restore(directory)
            check_history(history, epoch, directory / "history.csv")
        except Exception as exc:  # noqa: BLE001 - any failure to read means damage; reported below
            problems.append(f"{directory.name}: {_first_line(exc)}")
            continue
        if problems:
            log.warning("damaged checkpoint(s) skipped (%s); resuming from the intact checkpoint of "
                        "epoch %d in %s", "; ".join(problems), epoch, directory)
        return epoch, history
    raise RunError(f"{checkpoints_dir}: no intact checkpoint to resume from ({'; '.join(problems)}); "
                   "move the run directory away and start a new one")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
