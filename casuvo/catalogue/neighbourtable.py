# SPDX-License-Identifier: BSD-3-Clause
"""A survey's Gaia neighbour table (``<survey>.sources_x_gaia``), made with :mod:`casuvo.xmatch`.

Compute environment (``python -m casuvo.catalogue.neighbourtable``); ``casuvo xmatch
SURVEY`` starts it with the files the ledger says are in ``<survey>.sources``
and ``gaia.sources``, then COPYs the result.

Why the roles are swapped: the engine moves catalogue A with its proper
motions, and only Gaia has them, so Gaia is A and the survey is B; the
neighbour table is VSA style with the *survey* as master, so ids and quality
are turned round afterwards (:func:`neighbour_columns`): ``masterObjID`` =
the survey's sourceID, ``slaveObjID`` = Gaia source_id, and the quality is
recomputed with the survey as the choosing side (``number_of_neighbours``:
Gaia sources around the survey source; ``number_of_mates``: other survey
sources around the Gaia source; ``best_neighbour``: the survey source's
nearest Gaia source; ``one_to_one``: STILTS ``find=best``).

Epochs: a merged source's (ra, dec) is the mean of its band positions, so its
epoch is the mean of its bands' MJDs (the ``<band>mjd`` columns); each Gaia
source is moved from ``ref_epoch`` to the epoch of the survey source it is
compared with (the engine's per-row epoch of B).

What is recomputed: the inputs are recorded with their SHA-256 in
``state.json``; if they, the radius and the format are unchanged and the
output file is still the one written, nothing runs.  Otherwise the engine
runs; a run that was killed resumes per HEALPix partition (the engine's
``parts/``), and a change of any input changes the engine's plan, so every
partition is matched again (for the demo survey, seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from casuvo.logsetup import configure_logging

__all__ = ["DEFAULT_RADIUS_ARCSEC", "EPOCH_COLUMNS", "NEIGHBOUR_COLUMNS", "build_neighbours",
           "neighbour_columns"]

log = logging.getLogger(__name__)

#: The VSA's radius for its Gaia neighbour tables (vikingSourceXGDR1gaia_source: 2″).
DEFAULT_RADIUS_ARCSEC = 2.0
#: The per-band epoch columns of each survey's merged source table.
EPOCH_COLUMNS = {"vista": ("jmjd", "hmjd", "ksmjd"),
                 "vst": ("umjd", "gmjd", "rmjd", "hamjd", "imjd")}
#: Columns of the neighbour table and their FITS dtypes, in the RD's order
#: (resdir/common/xmatch.rd).
NEIGHBOUR_COLUMNS = {
    "masterObjID": ">i8", "slaveObjID": ">i8", "distanceMins": ">f4",
    "angular_distance": ">f8", "number_of_neighbours": ">i4", "number_of_mates": ">i4",
    "best_neighbour": ">i2", "one_to_one": ">i2", "ambiguous": ">i2"}
_STATE_VERSION = 1
_GAIA_COLUMNS = ("source_id", "ra", "dec", "pmra", "pmdec", "ref_epoch")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _column(data: object, name: str) -> np.ndarray:
    """A FITS column as native float64, TNULL-ed integers as NaN."""
    values = np.asarray(data[name])
    return values.astype(values.dtype.newbyteorder("=")).astype(np.float64)


def _write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)


def _gaia_input(files: list[Path], out: Path) -> None:
    """The columns of the Gaia files the match needs, in one Parquet file."""
    from astropy.io import fits
    from astropy.units import UnitsWarning

    parts: dict[str, list[np.ndarray]] = {c: [] for c in _GAIA_COLUMNS}
    for path in files:
        with fits.open(path, memmap=True) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitsWarning)  # Gaia's electron/s
            data = hdul[1].data
            for name in _GAIA_COLUMNS:
                if name == "source_id":
                    ids = np.asarray(data[name])
                    parts[name].append(ids.astype(ids.dtype.newbyteorder("=")))
                else:
                    parts[name].append(_column(data, name))
    _write_parquet(out, {k: np.concatenate(v) for k, v in parts.items()})


def _survey_input(survey: str, path: Path, out: Path) -> None:
    """sourceID, ra, dec and the mean epoch (MJD) of the band detections."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = hdul[1].data
        ids = np.asarray(data["sourceID"])
        epochs = np.stack([_column(data, c) for c in EPOCH_COLUMNS[survey]])
        with warnings.catch_warnings():  # a source without any epoch: NaN, said below
            warnings.simplefilter("ignore", RuntimeWarning)
            epoch = np.nanmean(epochs, axis=0)
        _write_parquet(out, {"sourceID": ids.astype(ids.dtype.newbyteorder("=")),
                             "ra": _column(data, "ra"), "dec": _column(data, "dec"),
                             "epoch_mjd": epoch})


def neighbour_columns(pairs: dict[str, np.ndarray], n_gaia: int, n_survey: int
                      ) -> dict[str, np.ndarray]:
    """The neighbour table from the engine's pairs (A = Gaia, B = survey), survey as master.

    Sorted by masterObjID, then distance, so the file (and its checksum) depends
    only on the pairs.
    """
    from casuvo.xmatch.quality import assess

    a_row, b_row = pairs["a_row"], pairs["b_row"]
    sep = pairs["angular_distance"]
    quality = assess(b_row, a_row, sep, n_survey, n_gaia)   # the survey chooses
    order = np.lexsort((pairs["a_id"], sep, pairs["b_id"]))
    cols = {"masterObjID": pairs["b_id"], "slaveObjID": pairs["a_id"],
            "distanceMins": sep / 60.0, "angular_distance": sep,
            "number_of_neighbours": quality.number_of_neighbours,
            "number_of_mates": quality.number_of_mates,
            "best_neighbour": quality.best, "one_to_one": quality.mutual,
            "ambiguous": quality.ambiguous}
    return {name: np.asarray(cols[name])[order].astype(dtype)
            for name, dtype in NEIGHBOUR_COLUMNS.items()}


def _write_fits(path: Path, columns: dict[str, np.ndarray]) -> None:
    from astropy.io import fits

    units = {"distanceMins": "arcmin", "angular_distance": "arcsec"}
    fmt = {"i8": "K", "f4": "E", "f8": "D", "i4": "J", "i2": "I"}
    cols = [fits.Column(name=n, format=fmt[v.dtype.str[1:]], unit=units.get(n), array=v)
            for n, v in columns.items()]
    hdu = fits.BinTableHDU.from_columns(cols, name="NEIGHBOURS")
    tmp = path.with_name(f".{path.name}.tmp")
    # No CHECKSUM cards: their comment holds the time, and the file must depend
    # only on the pairs (the ledger keeps its SHA-256).
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
    os.replace(tmp, path)


def build_neighbours(survey: str, sources: Path, gaia: list[Path], radius: float, out: Path,
                     *, workers: int | None = None, scheduler: str | None = None,
                     progress: bool = True, force: bool = False) -> dict:
    """Make ``out/neighbours.fits``; the returned summary is also ``out/state.json``.

    Raises :class:`casuvo.xmatch.XmatchError` for bad parameters or inputs;
    ``neighbours.fits`` and ``state.json`` are then left as they were.
    """
    from casuvo.xmatch import TableSpec, XmatchArgs, XmatchError, run_xmatch

    if survey not in EPOCH_COLUMNS:
        raise XmatchError(f"unknown survey {survey!r} (one of {', '.join(EPOCH_COLUMNS)})")
    if not (np.isfinite(radius) and radius > 0):
        raise XmatchError(f"radius must be a positive number of arcsec, not {radius!r}")
    for path in (sources, *gaia):
        if not path.is_file():
            raise XmatchError(f"{path}: no such file")
    t0 = time.perf_counter()
    inputs = {str(p.resolve()): _sha256(p) for p in (sources, *gaia)}
    key = {"version": _STATE_VERSION, "survey": survey, "radius_arcsec": radius,
           "inputs": inputs}
    state_file, result = out / "state.json", out / "neighbours.fits"
    if not force and state_file.exists() and result.exists():
        try:
            state = json.loads(state_file.read_text())
        except ValueError:
            state = {}
        if state.get("key") == key and state.get("sha256") == _sha256(result):
            log.info("%s: inputs and radius unchanged; nothing to do", result)
            return {**state, "skipped": True}

    in_dir = out / "inputs"
    in_dir.mkdir(parents=True, exist_ok=True)
    gaia_in, survey_in = in_dir / "gaia.parquet", in_dir / f"{survey}.parquet"
    made = json.loads((in_dir / "made.json").read_text()) if (in_dir / "made.json"
                                                               ).exists() else {}
    # Rewrite an engine input only when its sources changed: an unchanged
    # file keeps its mtime, so the engine's plan (and a killed run's parts) stay valid.
    gaia_key = {str(g.resolve()): inputs[str(g.resolve())] for g in gaia}
    if made.get("gaia") != gaia_key or not gaia_in.exists():
        _gaia_input(gaia, gaia_in)
        made["gaia"] = gaia_key
    if made.get(survey) != inputs[str(sources.resolve())] or not survey_in.exists():
        _survey_input(survey, sources, survey_in)
        made[survey] = inputs[str(sources.resolve())]
    (in_dir / "made.json").write_text(json.dumps(made, indent=1))

    a = TableSpec(gaia_in, "ra", "dec", "source_id", "pmra", "pmdec", "ref_epoch")
    b = TableSpec(survey_in, "ra", "dec", "sourceID", epoch="epoch_mjd")
    summary = run_xmatch(XmatchArgs(a, b, radius, out / "engine", scheduler=scheduler,
                                    workers=workers, progress=progress))
    import pyarrow.parquet as pq

    table = pq.read_table(summary.outputs["pairs"])
    pairs = {name: table.column(name).to_numpy() for name in table.column_names}
    columns = neighbour_columns(pairs, summary.n_a, summary.n_b)
    _write_fits(result, columns)
    state = {"key": key, "sha256": _sha256(result), "file": str(result),
             "n_pairs": int(columns["masterObjID"].size),
             "n_masters": int(np.unique(columns["masterObjID"]).size),
             "n_best": int(columns["best_neighbour"].sum()),
             "n_one_to_one": int(columns["one_to_one"].sum()),
             "n_gaia": summary.n_a, "n_survey": summary.n_b, "epoch": summary.epoch,
             "order": summary.order, "partitions": summary.partitions,
             "computed": summary.computed, "resumed": summary.resumed,
             "engine_seconds": summary.seconds, "seconds": time.perf_counter() - t0}
    tmp = out / ".state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, state_file)
    return {**state, "skipped": False}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m casuvo.catalogue.neighbourtable",
                                description="Make a survey's Gaia neighbour-table file.")
    p.add_argument("survey")
    p.add_argument("--sources", type=Path, required=True, help="the merged source file")
    p.add_argument("--gaia", type=Path, nargs="+", required=True, help="the Gaia files")
    p.add_argument("--radius", type=float, default=DEFAULT_RADIUS_ARCSEC, help="arcsec")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--workers", type=int)
    p.add_argument("--scheduler")
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 (made or up to date), 2 (usage error: nothing written)."""
    args = _parser().parse_args(argv)
    import distributed  # noqa: F401 - configures its loggers on import; quieten them after

    from casuvo.xmatch import XmatchError

    configure_logging(quiet=("distributed", "bokeh", "tornado"))
    try:
        state = build_neighbours(args.survey, args.sources, args.gaia, args.radius, args.out,
                                 workers=args.workers, scheduler=args.scheduler,
                                 progress=not args.no_progress, force=args.force)
    except XmatchError as exc:
        print(f"casuvo xmatch: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in state.items() if k != "key"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
