"""Stopping training on SIGINT or SIGTERM at the next epoch boundary.

The first signal asks the trainer to finish the current epoch, save a checkpoint and stop; a
second one stops at once (the last saved checkpoint stays intact). Outside the main thread,
where Python cannot install signal handlers, signals keep their default behaviour.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator

log = logging.getLogger("medgan")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(BaseException):
    """A second signal arrived: abandon the current epoch (a BaseException, so no handler swallows it)."""


class StopRequest:
    """Set by the first SIGINT/SIGTERM: ``signal_name`` is that signal's name, else None."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def _handle(self, signum: int, _frame) -> None:
        if self.signal_name is not None:
            raise StopNow(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: finishing this epoch, then saving a checkpoint and stopping "
                    "(send it again to stop at once; the last saved checkpoint stays intact)", self.signal_name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM as a :class:`StopRequest` while the block runs."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request._handle) for sig in SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
