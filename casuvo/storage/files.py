# SPDX-License-Identifier: BSD-3-Clause
"""Files as the product store needs them: complete or absent, and checksummed.

Every writer of a product, marker, state file or export goes through
:func:`atomic_path` (or its FITS/text/JSON shorthands), so a crash, a full disk
or a kill -9 leaves either the old file or the new one — never half of one —
and no glob of finished products matches the hidden temporary name.
:func:`checksum` is the one SHA-256 of a file the ledger and the up-to-date
checks compare.  This module needs only the standard library (and astropy for
FITS), so code on Dask workers may use it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = ["DiskFullError", "atomic_path", "checksum", "remove_stale_parts", "write_fits",
           "write_json", "write_text"]

#: A temporary file not written to for this long belongs to a writer that died.
STALE_PART_SECONDS = 600.0


class DiskFullError(OSError):
    """A file could not be written because its file system is full (or over quota).

    The message names the file and the free space left, so that a pipeline's or an
    ingest's failure record says what to fix; ``errno`` is ``ENOSPC`` (or ``EDQUOT``).
    """


def _disk_full(exc: BaseException, path: Path) -> DiskFullError | None:
    """The clear error for a write of ``path`` that failed on a full file system, else None.

    Writers report it differently: ``write`` gives ``ENOSPC``, astropy's FITS
    writer a plain ``OSError("Not enough space on disk: ...")``.
    """
    if not isinstance(exc, OSError) or isinstance(exc, DiskFullError):
        return None
    code = exc.errno if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    if code is None and "space" not in str(exc).lower():
        return None
    try:
        stat = os.statvfs(path.parent)
        free = f"{stat.f_bavail * stat.f_frsize:,d} bytes"
    except OSError:
        free = "unknown space"
    what = "quota exceeded" if code == errno.EDQUOT else "no space left on device"
    error = DiskFullError(f"{path}: not written, {what} ({free} free in {path.parent})")
    error.errno = code or errno.ENOSPC
    return error


def checksum(path: Path, blocksize: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, as hexadecimal."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(blocksize):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path, *, mode: int = 0o644, fsync: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; rename it over ``path`` on success.

    The temporary name starts with a dot and ends in ``.part``, so no product
    glob matches it; on any exception it is removed and ``path`` is untouched.
    ``os.replace`` is atomic on POSIX within one file system, which the same
    directory guarantees.  With ``fsync`` the file's bytes reach the disk before
    the rename and the rename itself after it (the directory is synced too), so
    that even a power cut leaves the old file or the complete new one — for
    inputs that every later step trusts, such as the Gaia reference catalogue.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            _fsync(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if (full := _disk_full(exc, path)) is not None:
            raise full from exc
        raise
    if fsync:
        _fsync(path.parent)


def remove_stale_parts(root: Path, older_than: float = STALE_PART_SECONDS) -> list[Path]:
    """Remove the temporary files of writers killed mid-write (SIGKILL, power cut) under
    ``root``; returns them.

    :func:`atomic_path` removes its temporary file on any exception, but a killed
    process runs no handler.  Only files untouched for ``older_than`` seconds go: a
    live writer's file changes while it writes, so a run sharing the tree keeps its own.
    """
    limit = time.time() - older_than
    removed = []
    for path in Path(root).rglob(".*.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed.append(path)
    return removed


def _fsync(path: Path) -> None:
    """Flush a file's (or a directory's) data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_fits(hdul: fits.HDUList, path: Path, *, checksum: bool = True,
               fsync: bool = False) -> None:
    """Write a FITS file atomically, with CHECKSUM/DATASUM by default (``fsync``: see
    :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        hdul.writeto(tmp, overwrite=True, checksum=checksum)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: Any, **dumps: Any) -> None:
    """Write ``data`` as JSON atomically (``dumps`` passed to :func:`json.dumps`)."""
    write_text(path, json.dumps(data, **dumps))
