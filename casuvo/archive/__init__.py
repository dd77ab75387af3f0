# SPDX-License-Identifier: BSD-3-Clause
"""Archive publishing (layer: archive).

Owns what the archive publishes about products: one record per image
(:mod:`~casuvo.archive.imagemeta`), coverage (MOC, HiPS), and the map of
service URLs (:mod:`~casuvo.archive.endpoints`).  It reads files and the
ledger; it may import :mod:`casuvo.storage`, :mod:`casuvo.sky`,
:mod:`casuvo.surveys` and :mod:`casuvo.config`, never :mod:`casuvo.dachs`
(which imports it) nor the command line.
"""
