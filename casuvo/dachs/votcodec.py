# SPDX-License-Identifier: BSD-3-Clause
"""VOTable row encoders compiled once per table layout, applied at server start.

DaCHS 2.7 writes every VOTable through a row encoder generated as Python
source from the table's FIELDs and compiled (``compile`` + ``exec``) anew
for every response (``votable.coding.buildEncoder``, called by
``votable.tablewriter.DelayedTable``).  A cone search or a small TAP result
has the same FIELDs every time, so the compile is repeated work: py-spy on
a work process answering 5″ SCS cones found 8 % of the request's samples in
that compile.

:func:`install` keeps the compiled encoders of the BINARY and TABLEDATA
writers, keyed by their exact source (:data:`MAX_ENCODERS`, least recently
used first out).  Only encoders whose environment is their writer module's
own globals are kept — then the source alone determines the function; the
BINARY2 writer gives each table its own environment (its NULL flags), so
its encoders are compiled per response as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["MAX_ENCODERS", "install", "installed", "stats"]

#: compiled encoders kept per process
MAX_ENCODERS = 256

_installed = False
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_counts = {"hits": 0, "compiled": 0}


def installed() -> bool:
    """True once :func:`install` has run in this process."""
    return _installed


def stats() -> dict[str, int]:
    """Encoders reused and compiled (cacheable ones only) in this process."""
    with _lock:
        return {**_counts, "kept": len(_cache)}


def install() -> None:
    """Wrap ``gavo.votable.coding.buildEncoder`` with the cache (idempotent)."""
    global _installed
    if _installed:
        return
    from gavo.votable import coding

    build_codec = coding.buildCodec

    def build_encoder(tableDefinition: Any, encoderModule: Any) -> Any:  # noqa: N803
        source = coding.getRowEncoderSource(tableDefinition, encoderModule)
        env = encoderModule.getGlobals(tableDefinition)
        if env is not vars(encoderModule):  # a per-table environment: not shareable
            return build_codec(source, env)
        key = (encoderModule.__name__, source)
        with _lock:
            encoder = _cache.get(key)
            if encoder is not None:
                _cache.move_to_end(key)
                _counts["hits"] += 1
                return encoder
        encoder = build_codec(source, env)
        with _lock:
            _cache[key] = encoder
            _counts["compiled"] += 1
            while len(_cache) > MAX_ENCODERS:
                _cache.popitem(last=False)
        return encoder

    build_encoder.__wrapped__ = coding.buildEncoder  # type: ignore[attr-defined]
    coding.buildEncoder = build_encoder
    _installed = True
