"""Expected failures, and the one ``error:`` line each of them gives on the command line.

An expected failure is one the user can fix from its message alone: a bad option or file, a run
directory in use, a full disk. :func:`run_command` runs a command and turns such a failure into
one ``error: ...`` line on stderr and exit status 2; any other exception keeps its traceback,
since it is a bug to report.
"""
from __future__ import annotations

import errno
import sys
from typing import Callable

EXIT_ERROR = 2

# OSErrors that come from the machine, not from the code: shown without a traceback.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR})


class MedganError(Exception):
    """An expected failure whose message says what is wrong and what to do about it."""


class ConfigError(MedganError, ValueError):
    """A configuration value out of range; ``field`` is the :class:`~medgan_lib.config.Config` field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


class RunError(MedganError):
    """A run directory that cannot be used as asked (in use, malformed, other config or data)."""


class Interrupted(MedganError):
    """Training stopped on a signal; the message says which checkpoint the resume starts from."""


def _is_data_error(error: BaseException) -> bool:
    """Whether ``error`` is a DataError (imported only when needed: the data module pulls in TensorFlow)."""
    if "medgan_lib.data" not in sys.modules:
        return False
    return isinstance(error, sys.modules["medgan_lib.data"].DataError)


def describe(error: BaseException) -> str | None:
    """The message of an expected failure, or None for an unexpected one."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRNOS:
        where = error.filename if error.filename is not None else "a file"
        return f"{where}: {error.strerror}"
    if isinstance(error, MedganError) or _is_data_error(error):
        return str(error)
    return None


def run_command(command: Callable[[], int | None]) -> int:
    """Run ``command``; an expected failure becomes one ``error:`` line and exit status 2."""
    try:
        return command() or 0
    except (Exception, KeyboardInterrupt) as error:
        message = describe(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
