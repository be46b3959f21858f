"""One trainer per run directory: an OS-level advisory lock held for the life of training.

The trainer holds ``fcntl.flock`` on ``RUN_DIR/.train.lock``, a text file saying which process
holds it (pid, host, start time). The kernel releases the lock when that process ends, however
it ends, so a killed trainer never leaves the directory locked; the file itself is removed on a
normal exit. Readers (evaluate, generate, notebooks) take no lock: every file a trainer writes
is replaced atomically, so they may read a live run.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import socket
from pathlib import Path
from typing import Iterator

from .errors import RunError

LOCK_NAME = ".train.lock"


class RunLocked(RunError):
    """Another process is training in this run directory."""


def _holder_text() -> str:
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n"


def _open_locked(path: Path, run_dir: Path) -> int:
    """A descriptor of ``path`` holding its exclusive lock, or RunLocked naming the holder."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(f"{run_dir}: cannot create the lock file {LOCK_NAME} ({exc.strerror}); training "
                           "needs a writable run directory (evaluate and the notebooks can read it as it is)") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "a process that is starting"
            os.close(fd)
            raise RunLocked(f"{run_dir} is being trained by another process ({holder}; lock {path}); "
                            "wait for it to finish or use another --run-dir") from None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            return fd
        os.close(fd)  # the file was removed by its previous holder between our open and lock: retry


@contextlib.contextmanager
def train_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Create ``run_dir`` if needed and hold its trainer lock; yields the directory.

    On exit the lock file is removed, and directories this call created are removed again if
    nothing was written into them, so a run that failed before writing leaves no trace.
    """
    run_dir = Path(run_dir)
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from exc
    path = run_dir / LOCK_NAME
    try:
        fd = _open_locked(path, run_dir)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, _holder_text().encode())
        yield run_dir
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding the lock, so no waiting opener can keep a stale file
        os.close(fd)
        _remove_empty(created)


def _remove_empty(directories: list[Path]) -> None:
    """Remove the directories, deepest first, that are still empty."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return
