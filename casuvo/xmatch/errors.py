# SPDX-License-Identifier: BSD-3-Clause
"""The usage error of the cross-match: bad parameters or input tables.

Raised before anything is written, with a message that names the parameter,
file or column, so that the command line prints it and exits with status 2
(anything else escaping the engine is a bug).
"""

from __future__ import annotations

__all__ = ["XmatchError"]


class XmatchError(ValueError):
    """The cross-match cannot run on these inputs; the message says which and why."""
