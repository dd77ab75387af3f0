# SPDX-License-Identifier: BSD-3-Clause
"""What goes wrong in the client, as exceptions that say what and why.

Bad arguments (a declination beyond ±90°, a negative size, a malformed
archive name) raise :class:`ValueError` before any request is made; what only
the server can tell (unreachable, a TAP error document, no DataLink service,
an archive it does not publish) raises :class:`ArchiveError`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ArchiveError", "CutoutError", "CutoutWarning", "UnknownArchiveError"]


class ArchiveError(RuntimeError):
    """The archive's services failed or refused a request; the message says which and why.

    Bad arguments (a declination beyond ±90°, a negative size, a malformed
    archive name) raise :class:`ValueError` before any request is made; this is
    for what only the server can tell (unreachable, a TAP error document, no
    DataLink service).
    """


class UnknownArchiveError(ArchiveError, ValueError):
    """The server publishes no image archive of that name; the message lists those it has.

    Also a :class:`ValueError`: the name was a bad argument, only the server
    could tell.
    """


class CutoutError(ArchiveError):
    """One or more cutouts failed; :attr:`failures` maps each image's label to why."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = "\n".join(f"  {label}: {why}" for label, why in self.failures.items())
        super().__init__(f"{len(self.failures)} cutout(s) failed:\n{lines}")


class CutoutWarning(UserWarning):
    """Cutouts failed and were returned as ``None`` (``on_error="warn"``)."""
