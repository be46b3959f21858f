"""Read chosen rows of the arrays in an .npz archive without decompressing the rest.

``np.load`` reads an archive member whole, and ``mmap_mode`` does not work inside a zip file. An
.npz member is an ``.npy`` file: a short header (dtype, shape, order) followed by the raw bytes in
C order, so row ``i`` of a C-ordered array starts at a known offset of the member's stream. This
module reads the header, then streams only up to the last row asked for, copying just those rows
(a compressed member is decompressed up to that point, in bounded chunks, never held whole).
Nothing is unpickled: object arrays are refused from their header.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Fortran-ordered arrays cannot be read row by row; one at most this large is read whole.
FORTRAN_READ_LIMIT = 256 << 20
_CHUNK_BYTES = 16 << 20  # bytes copied per read from a member stream
_NPY_MAGIC = b"\x93NUMPY"


class ArchiveError(ValueError):
    """The archive or one of its members cannot be read; the message names the problem."""


@dataclass(frozen=True)
class ArrayHeader:
    """What an archive member's ``.npy`` header says, known before any data is read."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one index of the first axis)."""
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


class NpzArchive:
    """An open .npz archive: its array names, their headers and chosen rows of them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            with open(self.path, "rb") as handle:
                if handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                    raise ArchiveError("is a single .npy array, not an .npz archive") from exc
            raise ArchiveError(f"not a zip archive ({exc})") from exc
        self._members = {info.filename[: -len(".npy")]: info for info in self._zip.infolist()
                         if info.filename.endswith(".npy")}

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc_info) -> None:
        self._zip.close()

    @property
    def names(self) -> list[str]:
        """The array names, sorted (as ``np.load(path).files`` lists them)."""
        return sorted(self._members)

    def header(self, name: str) -> ArrayHeader:
        """The header of array ``name``; ArchiveError if it cannot be read."""
        with self._open(name) as stream:
            return self._read_header(name, stream)

    def rows(self, name: str, indices: np.ndarray) -> np.ndarray:
        """Rows ``indices`` (ascending, unique) of array ``name``, reading no further than the last one."""
        indices = np.asarray(indices, np.int64)
        if len(indices) and (np.any(np.diff(indices) <= 0) or indices[0] < 0):
            raise ValueError("indices must be ascending, unique and non-negative")
        with self._open(name) as stream:
            header = self._read_header(name, stream)
            count = header.shape[0] if header.shape else 0
            if len(indices) and indices[-1] >= count:
                raise ArchiveError(f"array {name!r} has {count} rows; row {indices[-1]} asked for")
            if header.fortran_order:
                return self._fortran_rows(header, stream, indices)
            out = np.empty((len(indices),) + header.shape[1:], header.dtype)
            buffer = memoryview(out.reshape(-1).view(np.uint8)) if out.size else memoryview(b"")
            start = stream.tell()
            row = header.row_bytes
            for first, position, length in _runs(indices):
                stream.seek(start + first * row)
                _read_into(stream, buffer[position * row : (position + length) * row], name)
            return out

    def _open(self, name: str):
        try:
            return self._zip.open(self._members[name])
        except KeyError:
            raise ArchiveError(f"no array {name!r}") from None
        except (OSError, zipfile.BadZipFile, NotImplementedError) as exc:
            raise ArchiveError(f"cannot read array {name!r} ({type(exc).__name__}: {exc})") from exc

    @staticmethod
    def _read_header(name: str, stream) -> ArrayHeader:
        try:
            version = np.lib.format.read_magic(stream)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = reader(stream)
        except Exception as exc:
            raise ArchiveError(f"array {name!r} has no valid .npy header ({type(exc).__name__}: {exc})") from exc
        if dtype.hasobject:
            raise ArchiveError(f"array {name!r} holds Python objects (dtype {dtype}); they are never unpickled")
        return ArrayHeader(name, tuple(int(n) for n in shape), dtype, bool(fortran_order))

    @staticmethod
    def _fortran_rows(header: ArrayHeader, stream, indices: np.ndarray) -> np.ndarray:
        total = header.row_bytes * (header.shape[0] if header.shape else 1)
        if total > FORTRAN_READ_LIMIT:
            raise ArchiveError(
                f"array {header.name!r} is Fortran-ordered ({total:,} bytes): its rows cannot be read one by one "
                f"and it is above the {FORTRAN_READ_LIMIT:,}-byte limit for reading it whole; save it C-ordered "
                "(np.ascontiguousarray)"
            )
        flat = np.empty(int(np.prod(header.shape, dtype=np.int64)), header.dtype)
        _read_into(stream, memoryview(flat.view(np.uint8)), header.name)
        return np.ascontiguousarray(flat.reshape(header.shape, order="F")[indices])


def _runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Consecutive stretches of ascending ``indices`` as (first index, position in indices, length)."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    lengths = np.diff(np.concatenate([starts, [len(indices)]]))
    return [(int(indices[s]), int(s), int(n)) for s, n in zip(starts, lengths)]


def _read_into(stream, target: memoryview, name: str) -> None:
    """Fill ``target`` from ``stream`` in bounded chunks; ArchiveError if the member ends early."""
    done = 0
    while done < len(target):
        try:
            block = stream.read(min(_CHUNK_BYTES, len(target) - done))
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise ArchiveError(f"cannot read array {name!r} ({type(exc).__name__}: {exc})") from exc
        if not block:
            raise ArchiveError(f"array {name!r} is truncated: its data ends before its header's shape")
        target[done : done + len(block)] = block
        done += len(block)
