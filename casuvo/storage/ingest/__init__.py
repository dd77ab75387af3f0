# SPDX-License-Identifier: BSD-3-Clause
"""Bulk ingestion: binary COPY of catalogue files into PostgreSQL, with a ledger."""

from casuvo.storage.ingest.catalogue import IngestError, IngestResult, ingest_catalogue

__all__ = ["IngestError", "IngestResult", "ingest_catalogue"]
