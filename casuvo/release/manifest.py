# SPDX-License-Identifier: BSD-3-Clause
"""A release's manifest (``manifest.json``) and description (``releasedescription.txt``).

The manifest lists every delivered file with its category, size, MD5 (ESO's
ASSOMi and Phase 3 tools use MD5) and SHA-256 (the ledger's checksum), the
archive record it came from (accref, position), the provenance held outside
the release (raw frames and intermediate products the archive keeps, with
their checksums), and the archive state it was built from (query, group,
ledger runs, code version).  ``casuvo release validate`` checks a directory
against it; the archive keeps a copy in ``releases.releases``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DESCRIPTION",
    "MANIFEST",
    "file_hashes",
    "read_manifest",
    "write_description",
    "write_manifest",
]

MANIFEST = "manifest.json"
DESCRIPTION = "releasedescription.txt"


def file_hashes(path: Path) -> tuple[str, str, int]:
    """(MD5, SHA-256, size) of a file, read once."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return md5.hexdigest(), sha.hexdigest(), size


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a release directory (ValueError naming the problem)."""
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no manifest (was the directory made by casuvo release "
                         "build?)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_description(directory: Path, manifest: Mapping[str, Any]) -> Path:
    """The release description, in the sections of ESO's template."""
    files = manifest["files"]
    counts: dict[str, int] = {}
    for entry in files.values():
        counts[entry["prodcatg"]] = counts.get(entry["prodcatg"], 0) + 1
    state = manifest["archive_state"]
    lines = [
        f"Release description: {manifest['name']}",
        "",
        "Abstract",
        f"  Products of the casuvo survey data centre selected by the query below, "
        f"delivered to the ESO Science Data Products standard. {len(files)} files.",
        "",
        "Overview of observations",
        f"  Query ({manifest['query_language']}): {manifest['query']}",
        f"  Group: {manifest['group'] or 'public (no proprietary products)'}",
        "",
        "Release content",
        *(f"  {category}: {n}" for category, n in sorted(counts.items())),
        "",
        "Data reduction and calibration",
        f"  casuvo {state['code_version']}; pipeline runs: "
        f"{', '.join(state['runs']) or 'none recorded'}.",
        "  Provenance: PROVi of each file names its inputs; those not delivered here are "
        "listed in manifest.json (external) with their SHA-256.",
        "",
        "Data quality",
        "  Every file passed casuvo release validate (SDP keyword rules, fitsverify, "
        "provenance, checksums, positions against the archive).",
        "",
        "Data format",
        "  One product per FITS file; CHECKSUM/DATASUM in every HDU; manifest.json lists MD5 "
        "and SHA-256 of every file.",
        "",
        "Acknowledgements",
        "  Based on data products of the casuvo survey data centre.",
    ]
    path = directory / DESCRIPTION
    path.write_text("\n".join(lines) + "\n")
    return path
