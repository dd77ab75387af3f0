# SPDX-License-Identifier: BSD-3-Clause
"""HATS catalogues of published tables, for LSDB users (compute environment).

:func:`export_hats` writes a HATS *collection* ``DIR/NAME`` with hats-import:
the catalogue itself
(``DIR/NAME/NAME``, HEALPix-partitioned Parquet, at most ``pixel_threshold``
rows a partition) and a default margin catalogue of ``margin_arcsec``
(``DIR/NAME/NAME_<margin>arcs``), so that ``lsdb.open_catalog(DIR/NAME)``
returns a catalogue whose cross-matches are right at partition boundaries
(anything within the margin is seen from the neighbouring partition).
``casuvo export hats TABLE`` starts it (as a :class:`casuvo.jobs.HatsExportJob`)
with the files the ledger says are in TABLE, so the export holds the same rows
as the database, and skips it when the ledger says the collection is up to
date with them (:mod:`casuvo.storage.uptodate`).

FITS files are first converted to Parquet here (not with hats-import's FITS
reader; Parquet inputs are read as they are), because integer columns with a
TNULL must become nulls, not the TNULL value, and text must be text rather
than bytes.  The export is built
under a temporary name and renamed into place, so ``DIR/NAME`` is always a
whole collection; ``casuvo_export.json`` in the collection records its inputs
(SHA-256) and parameters, for whoever opens it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casuvo.storage.files import checksum

__all__ = ["ExportArgs", "ExportError", "export_hats"]

log = logging.getLogger(__name__)

_STATE = "casuvo_export.json"
_VERSION = 1


@dataclass(frozen=True)
class ExportArgs:
    """What to export and how: the collection ``out_dir/name`` from ``files``."""

    name: str
    files: tuple[Path, ...]
    out_dir: Path
    ra: str = "ra"
    dec: str = "dec"
    pixel_threshold: int = 100_000
    highest_order: int = 10
    margin_arcsec: float = 10.0
    workers: int = 1
    framesets: tuple[int, ...] | None = None
    """Rows kept: those whose ``frameSetID`` is one of these (None: all)."""


class ExportError(ValueError):
    """The export cannot run on these inputs; nothing was written."""


def fits_to_parquet(source: Path, target: Path,
                    framesets: tuple[int, ...] | None = None) -> int:
    """One FITS table as Parquet: TNULL integers as nulls, text as text, units kept.

    ``framesets``: keep only the rows of these frame sets (a merged source
    table's ``frameSetID``), so that an export holds what its audience may see.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.table import Table
    from astropy.units import UnitsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnitsWarning)
        table = Table.read(source, hdu=1, character_as_bytes=False)
    if framesets is not None:
        if "frameSetID" not in table.colnames:
            raise ExportError(f"{source}: no frameSetID column to select frame sets by")
        table = table[np.isin(np.asarray(table["frameSetID"]), np.asarray(framesets))]
    arrays, fields = [], []
    for name in table.colnames:
        column = table[name]
        values = np.asarray(column)
        values = values.astype(values.dtype.newbyteorder("=")) if values.dtype.kind in "iufb" \
            else values
        mask = np.asarray(getattr(column, "mask", np.zeros(len(values), bool)), dtype=bool)
        if values.dtype.kind == "f":
            mask = mask | np.isnan(values)
        array = pa.array(values, mask=mask if mask.any() else None)
        unit = str(column.unit) if column.unit is not None else ""
        arrays.append(array)
        fields.append(pa.field(name, array.type,
                               metadata={"unit": unit} if unit else None))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), target)
    return len(table)


def export_hats(args: ExportArgs, client: object | None = None) -> dict:
    """Write the HATS collection (replacing any old one whole); returns its summary."""
    from dask.distributed import Client, LocalCluster
    from hats_import.collection.arguments import CollectionArguments
    from hats_import.pipeline import pipeline_with_client

    if not args.files:
        raise ExportError("no input files")
    for path in args.files:
        if not path.is_file():
            raise ExportError(f"{path}: no such file")
    if not args.margin_arcsec > 0:
        raise ExportError(f"margin must be > 0 arcsec, not {args.margin_arcsec!r}")
    t0 = time.perf_counter()
    target = args.out_dir / args.name
    key = {"version": _VERSION, "inputs": {str(p.resolve()): checksum(p) for p in args.files},
           "ra": args.ra, "dec": args.dec, "pixel_threshold": args.pixel_threshold,
           "highest_order": args.highest_order, "margin_arcsec": args.margin_arcsec,
           "framesets": None if args.framesets is None else sorted(args.framesets)}

    args.out_dir.mkdir(parents=True, exist_ok=True)
    work = args.out_dir / f".{args.name}.work"
    shutil.rmtree(work, ignore_errors=True)
    staging = work / "parquet"
    staging.mkdir(parents=True)
    rows, inputs = 0, []
    for k, path in enumerate(args.files):
        if path.suffix == ".parquet" and args.framesets is None:
            import pyarrow.parquet as pq

            rows += pq.read_metadata(path).num_rows
            inputs.append(path)
            continue
        out = staging / f"part{k:04d}.parquet"
        rows += fits_to_parquet(path, out, args.framesets)
        inputs.append(out)
    if rows == 0:
        shutil.rmtree(work)
        raise ExportError(f"{', '.join(map(str, args.files))}: no rows"
                          + ("" if args.framesets is None else " in the frame sets exported"))
    build = work / "out"
    collection = (CollectionArguments(output_artifact_name=args.name, output_path=build,
                                      tmp_dir=work / "tmp", progress_bar=False,
                                      resume=False)
                  .catalog(input_file_list=[str(p) for p in inputs], file_reader="parquet",
                           ra_column=args.ra, dec_column=args.dec,
                           pixel_threshold=args.pixel_threshold,
                           highest_healpix_order=args.highest_order,
                           output_artifact_name=args.name)
                  .add_margin(margin_threshold=args.margin_arcsec, is_default=True))
    own_cluster = own_client = None
    if client is None:
        own_cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=":0",
                                   local_directory=str(work / "dask"))
        client = own_client = Client(own_cluster)
    try:
        pipeline_with_client(collection, client)
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    built = build / args.name
    from hats import read_hats

    catalogue = read_hats(built / args.name)
    n_rows = int(catalogue.catalog_info.total_rows)
    if n_rows != rows:
        raise RuntimeError(f"hats-import wrote {n_rows} rows of {rows}")
    state = {"key": key, "rows": rows, "partitions": len(catalogue.get_healpix_pixels()),
             "path": str(target), "seconds": time.perf_counter() - t0}
    (built / _STATE).write_text(json.dumps(state, indent=1))
    old = args.out_dir / f".{args.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(built, target)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return state

