# SPDX-License-Identifier: BSD-3-Clause
"""Storage (layer: storage).

Owns the PostgreSQL cluster (:mod:`~casuvo.storage.pgcluster`), the processing
ledger (:mod:`~casuvo.storage.ledger`: all SQL on the ``ledger`` schema), the one
"is this output up to date with its inputs" answer built on it
(:mod:`~casuvo.storage.uptodate`), bulk ingestion (:mod:`~casuvo.storage.ingest`),
what the service side asks of published tables (:mod:`~casuvo.storage.tables`:
rows, indexes) and of the neighbour-table catalogues
(:mod:`~casuvo.storage.neighbours`), and the file-level helpers every writer
shares (:mod:`~casuvo.storage.files`: atomic writes, checksums).  It may
import :mod:`casuvo.sky`, :mod:`casuvo.surveys` and :mod:`casuvo.config`.
Only :mod:`casuvo.storage.files` is free of psycopg, so only it may be used by
code that runs on Dask workers.
"""
