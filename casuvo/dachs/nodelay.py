# SPDX-License-Identifier: BSD-3-Clause
"""TCP_NODELAY on every connection the DaCHS server accepts, applied at server start.

Twisted leaves Nagle's algorithm on for the sockets it accepts, and DaCHS
writes a small answer in several ``send`` calls (status line and headers,
then the body).  Nagle holds the second segment back until the first is
acknowledged, and a client on Linux delays that acknowledgement by up to
40 ms: every small answer to a keep-alive client — an SCS cone, a TAP sync
result of a few rows — then took ~52 ms where the work took ~9 ms (measured
on the demo stack, one client talking to one DaCHS process directly, as it
does with ``CASUVO_SERVER_PROCESSES=1`` and as haproxy does behind the
front).  :func:`install` switches Nagle off on each accepted connection, as
web servers and haproxy do; DaCHS already writes large answers in big
chunks, so nothing else changes.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["install", "installed"]

_installed = False


def installed() -> bool:
    """True once :func:`install` has run in this process."""
    return _installed


def install() -> None:
    """Wrap twisted's ``HTTPChannel.connectionMade`` to set TCP_NODELAY (idempotent)."""
    global _installed
    if _installed:
        return
    from twisted.web import http

    original = http.HTTPChannel.connectionMade

    def connection_made(self: Any) -> None:
        original(self)
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            with contextlib.suppress(OSError):  # a socket the peer already closed
                set_no_delay(True)

    http.HTTPChannel.connectionMade = connection_made
    _installed = True
