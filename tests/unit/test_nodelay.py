"""casuvo.dachs.nodelay: DaCHS's HTTP connections get TCP_NODELAY on a real socket."""

from __future__ import annotations

import socket
import warnings

from casuvo.dachs import nodelay

with warnings.catch_warnings():
    # twisted.web imports cgi (deprecated in Python 3.11), as DaCHS does
    warnings.simplefilter("ignore", DeprecationWarning)
    from twisted.internet import reactor, tcp
    from twisted.web import http


def _nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_accepted_connection_gets_nodelay() -> None:
    nodelay.install()
    nodelay.install()  # idempotent: one wrapper, not two
    assert nodelay.installed()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        try:
            assert not _nodelay(accepted)  # the kernel's default, which Twisted keeps
            channel = http.HTTPChannel()
            channel.makeConnection(tcp.Connection(accepted, channel, reactor))
            assert _nodelay(accepted)
            channel.setTimeout(None)  # no timer left on the (never run) reactor
        finally:
            accepted.close()
            client.close()
