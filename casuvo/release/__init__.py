# SPDX-License-Identifier: BSD-3-Clause
"""ESO Phase 3 releases (layer: release, beside archive publishing).

A release is a query over the archive, packaged to the ESO Science Data
Products standard, validated and recorded:

- :mod:`~casuvo.release.rules`: the SDP keyword rules per product category
  (mandatory and conditional keywords, allowed values, consistency), as
  checks over one file's headers; pure, no database;
- :mod:`~casuvo.release.sdp`: writing archive products as SDP files (CD
  matrices, one image per tile file, the merged catalogue as a
  SCIENCE.CATALOG, spectra as one-row binary tables), deterministic bytes;
- :mod:`~casuvo.release.manifest`: the manifest (files, checksums, archive
  state) and the release description;
- :mod:`~casuvo.release.validate`: ``casuvo release validate`` (rules,
  fitsverify, provenance closure, checksums, positions against the archive);
- :mod:`~casuvo.release.build`: ``casuvo release build`` (select, close the
  provenance, write, record).

It may import :mod:`casuvo.storage`, :mod:`casuvo.spectra`, :mod:`casuvo.surveys`
and :mod:`casuvo.config`; never :mod:`casuvo.dachs` (the command line hands it
the SQL of an ADQL query) nor the command line.
"""
