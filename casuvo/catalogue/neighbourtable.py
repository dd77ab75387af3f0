# SPDX-License-Identifier: BSD-3-Clause
"""A survey's Gaia neighbour table (``<survey>.sources_x_gaia``), made with :mod:`casuvo.xmatch`.

Compute environment: ``casuvo xmatch SURVEY`` starts :func:`build_neighbours` as a
:class:`casuvo.jobs.NeighbourTableJob` with the files the ledger says are in
``<survey>.sources`` and ``gaia.sources``, then COPYs the result.

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

What is recomputed: whether the file is up to date with its inputs (SHA-256)
and radius is decided by the caller, from the ledger
(:mod:`casuvo.storage.uptodate`); ``state.json`` records the inputs and the
summary beside the file.  When the engine runs, a run that was killed resumes
per HEALPix partition (the engine's ``parts/``), and a change of any input
changes the engine's plan, so every partition is matched again (for the demo
survey, seconds).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from casuvo.storage.files import atomic_path, checksum, write_fits, write_json
from casuvo.surveys.registry import Survey

__all__ = ["DEFAULT_RADIUS_ARCSEC", "ENGINES", "NEIGHBOUR_COLUMNS", "build_neighbours",
           "mean_epoch", "neighbour_columns", "neighbour_pair_columns"]

log = logging.getLogger(__name__)

#: The VSA's radius for its Gaia neighbour tables (vikingSourceXGDR1gaia_source: 2″).
DEFAULT_RADIUS_ARCSEC = 2.0
#: Columns of the neighbour table and their FITS dtypes, in the RD's order
#: (resdir/common/xmatch.rd).
NEIGHBOUR_COLUMNS = {
    "masterObjID": ">i8", "slaveObjID": ">i8", "distanceMins": ">f4",
    "angular_distance": ">f8", "number_of_neighbours": ">i4", "number_of_mates": ">i4",
    "best_neighbour": ">i2", "one_to_one": ">i2", "ambiguous": ">i2"}
_STATE_VERSION = 1
#: ``memory``: both catalogues read by the driver, one file (small surveys, the
#: demo); ``hats``: HATS partitions matched on the workers, one file per partition.
ENGINES = ("memory", "hats")
#: Rows per partition of the HATS engine's inputs.
HATS_PIXEL_THRESHOLD = 50_000
_GAIA_COLUMNS = ("source_id", "ra", "dec", "pmra", "pmdec", "ref_epoch")


def _column(data: object, name: str) -> np.ndarray:
    """A FITS column as native float64, TNULL-ed integers as NaN."""
    values = np.asarray(data[name])
    return values.astype(values.dtype.newbyteorder("=")).astype(np.float64)


def _write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


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


def mean_epoch(survey: Survey, data: object) -> np.ndarray:
    """The mean MJD of each source's band detections: its survey's epoch columns averaged.

    ``data`` is the merged table (a FITS record array or a mapping of columns);
    the columns are the registry's (``<prefix>mjd`` per band), NULL ones ignored.
    """
    epochs = np.stack([_column(data, c) for c in survey.epoch_columns])
    with warnings.catch_warnings():  # a source without any epoch: NaN, said by the engine
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(epochs, axis=0)


def _survey_input(survey: Survey, path: Path, out: Path) -> None:
    """sourceID, ra, dec and the mean epoch (MJD) of the band detections."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = hdul[1].data
        ids = np.asarray(data["sourceID"])
        _write_parquet(out, {"sourceID": ids.astype(ids.dtype.newbyteorder("=")),
                             "ra": _column(data, "ra"), "dec": _column(data, "dec"),
                             "epoch_mjd": mean_epoch(survey, data)})


def neighbour_pair_columns(pairs: dict[str, np.ndarray], n_gaia: int, n_survey: int
                           ) -> dict[str, np.ndarray]:
    """The neighbour-table columns of the engine's pairs (A = Gaia, B = survey), in their order.

    The survey is the master and chooses first: the quality is assessed from
    the survey's side.  Also the HATS engine's ``pair_columns``: each partition
    task calls it on its whole neighbourhood, so partitions are written as
    the table's rows.
    """
    from casuvo.xmatch.quality import assess

    sep = pairs["angular_distance"]
    quality = assess(pairs["b_row"], pairs["a_row"], sep, n_survey, n_gaia)
    cols = {"masterObjID": pairs["b_id"], "slaveObjID": pairs["a_id"],
            "distanceMins": sep / 60.0, "angular_distance": sep,
            "number_of_neighbours": quality.number_of_neighbours,
            "number_of_mates": quality.number_of_mates,
            "best_neighbour": quality.best, "one_to_one": quality.mutual,
            "ambiguous": quality.ambiguous}
    return {name: np.asarray(cols[name]).astype(dtype[1:])
            for name, dtype in NEIGHBOUR_COLUMNS.items()}


def neighbour_columns(pairs: dict[str, np.ndarray], n_gaia: int, n_survey: int
                      ) -> dict[str, np.ndarray]:
    """The neighbour table from all the engine's pairs, survey as master, FITS dtypes.

    Sorted by masterObjID, then distance, so the file (and its checksum) depends
    only on the pairs.
    """
    cols = neighbour_pair_columns(pairs, n_gaia, n_survey)
    order = np.lexsort((cols["slaveObjID"], cols["angular_distance"], cols["masterObjID"]))
    return {name: cols[name][order].astype(dtype) for name, dtype in NEIGHBOUR_COLUMNS.items()}


def _write_fits(path: Path, columns: dict[str, np.ndarray]) -> None:
    from astropy.io import fits

    units = {"distanceMins": "arcmin", "angular_distance": "arcsec"}
    fmt = {"i8": "K", "f4": "E", "f8": "D", "i4": "J", "i2": "I"}
    cols = [fits.Column(name=n, format=fmt[v.dtype.str[1:]], unit=units.get(n), array=v)
            for n, v in columns.items()]
    hdu = fits.BinTableHDU.from_columns(cols, name="NEIGHBOURS")
    # No CHECKSUM cards: their comment holds the time, and the file must depend
    # only on the pairs (the ledger keeps its SHA-256).
    write_fits(fits.HDUList([fits.PrimaryHDU(), hdu]), path, checksum=False)


def build_neighbours(survey: Survey, sources: Path, gaia: list[Path], radius: float,
                     out: Path, *, workers: int | None = None, scheduler: str | None = None,
                     progress: bool = True, engine: str = "memory") -> dict:
    """Make ``out/neighbours.fits``; the returned summary is also ``out/state.json``.

    ``survey`` is the registry entry of the survey whose merged sources are
    matched.  Raises :class:`casuvo.xmatch.XmatchError` for bad parameters or
    inputs; ``neighbours.fits`` and ``state.json`` are then left as they were.
    ``engine="hats"``: the inputs become HATS catalogues and the table's rows
    are written per partition instead (:func:`_build_from_hats`).
    """
    from casuvo.xmatch import TableSpec, XmatchArgs, XmatchError, run_xmatch

    if engine not in ENGINES:
        raise XmatchError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if not survey.sources:
        raise XmatchError(f"survey {survey.key!r} has no band-merged sources to match")
    if not (np.isfinite(radius) and radius > 0):
        raise XmatchError(f"radius must be a positive number of arcsec, not {radius!r}")
    for path in (sources, *gaia):
        if not path.is_file():
            raise XmatchError(f"{path}: no such file")
    t0 = time.perf_counter()
    inputs = {str(p.resolve()): checksum(p) for p in (sources, *gaia)}
    key = {"version": _STATE_VERSION, "survey": survey.key, "radius_arcsec": radius,
           "inputs": inputs}
    state_file, result = out / "state.json", out / "neighbours.fits"

    in_dir = out / "inputs"
    in_dir.mkdir(parents=True, exist_ok=True)
    gaia_in, survey_in = in_dir / "gaia.parquet", in_dir / f"{survey.key}.parquet"
    made = json.loads((in_dir / "made.json").read_text()) if (in_dir / "made.json"
                                                               ).exists() else {}
    # Rewrite an engine input only when its sources changed: an unchanged
    # file keeps its mtime, so the engine's plan (and a killed run's parts) stay valid.
    gaia_key = {str(g.resolve()): inputs[str(g.resolve())] for g in gaia}
    if made.get("gaia") != gaia_key or not gaia_in.exists():
        _gaia_input(gaia, gaia_in)
        made["gaia"] = gaia_key
    if made.get(survey.key) != inputs[str(sources.resolve())] or not survey_in.exists():
        _survey_input(survey, sources, survey_in)
        made[survey.key] = inputs[str(sources.resolve())]
    write_json(in_dir / "made.json", made, indent=1)
    if engine == "hats":
        return _build_from_hats(survey, key, in_dir, made, radius, out, workers=workers,
                                scheduler=scheduler, progress=progress, t0=t0)

    a = TableSpec(gaia_in, "ra", "dec", "source_id", "pmra", "pmdec", "ref_epoch")
    b = TableSpec(survey_in, "ra", "dec", "sourceID", epoch="epoch_mjd")
    summary = run_xmatch(XmatchArgs(a, b, radius, out / "engine", scheduler=scheduler,
                                    workers=workers, progress=progress))
    import pyarrow.parquet as pq

    table = pq.read_table(summary.outputs["pairs"])
    pairs = {name: table.column(name).to_numpy() for name in table.column_names}
    columns = neighbour_columns(pairs, summary.n_a, summary.n_b)
    _write_fits(result, columns)
    state = {"key": key, "sha256": checksum(result), "file": str(result),
             "n_pairs": int(columns["masterObjID"].size),
             "n_masters": int(np.unique(columns["masterObjID"]).size),
             "n_best": int(columns["best_neighbour"].sum()),
             "n_one_to_one": int(columns["one_to_one"].sum()),
             "n_gaia": summary.n_a, "n_survey": summary.n_b, "epoch": summary.epoch,
             "order": summary.order, "partitions": summary.partitions,
             "computed": summary.computed, "resumed": summary.resumed,
             "engine_seconds": summary.seconds, "seconds": time.perf_counter() - t0}
    write_json(state_file, state, indent=1)
    return state



def _hats_input(parquet: Path, name: str, ra: str, dec: str, made: dict, source_key: object,
                client: object) -> Path:
    """``parquet`` as a HATS collection beside it, rebuilt only when its sources changed."""
    from casuvo.catalogue.hatsexport import ExportArgs, export_hats

    target = parquet.parent / "hats" / name
    if made.get(f"hats:{name}") != source_key or not target.is_dir():
        export_hats(ExportArgs(name, (parquet,), target.parent, ra=ra, dec=dec,
                               pixel_threshold=HATS_PIXEL_THRESHOLD), client)
        made[f"hats:{name}"] = source_key
        write_json(parquet.parent / "made.json", made, indent=1)
    return target


def _build_from_hats(survey: Survey, key: dict, in_dir: Path, made: dict, radius: float,
                     out: Path, *, workers: int | None, scheduler: str | None,
                     progress: bool, t0: float) -> dict:
    """The neighbour table as Parquet partitions ``out/hats/pairs/…``, ready for COPY.

    Both inputs are imported as HATS catalogues (hats-import, with margins),
    then matched by the HATS engine, whose tasks write the table's own columns
    (:func:`neighbour_pair_columns`); nothing passes through the driver.  The
    summary is ``out/hats_state.json``; its ``files`` are what ``casuvo xmatch``
    COPYs.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from casuvo.xmatch import TableSpec, XmatchArgs, run_xmatch
    from casuvo.xmatch.engine import dask_client

    args_for_client = XmatchArgs(TableSpec(in_dir), TableSpec(in_dir), radius, out,
                                 scheduler=scheduler, workers=workers)
    with dask_client(args_for_client) as client:
        gaia_hats = _hats_input(in_dir / "gaia.parquet", "gaia", "ra", "dec", made,
                                made["gaia"], client)
        survey_hats = _hats_input(in_dir / f"{survey.key}.parquet", survey.key, "ra", "dec",
                                  made, made[survey.key], client)
        a = TableSpec(gaia_hats, "ra", "dec", "source_id", "pmra", "pmdec", "ref_epoch")
        b = TableSpec(survey_hats, "ra", "dec", "sourceID", epoch="epoch_mjd")
        summary = run_xmatch(XmatchArgs(a, b, radius, out / "hats", progress=progress,
                                        pair_columns=neighbour_pair_columns), client=client)
    files = sorted(Path(summary.outputs["pairs"]).rglob("*.parquet"))
    n_best = n_one = 0
    for path in files:    # one partition at a time: the driver never holds the table
        table = pq.read_table(path, columns=["best_neighbour", "one_to_one"])
        n_best += int(pc.sum(table.column("best_neighbour")).as_py() or 0)
        n_one += int(pc.sum(table.column("one_to_one")).as_py() or 0)
    state = {"key": key | {"engine": "hats"}, "engine": "hats",
             "files": [str(p) for p in files],
             "n_pairs": summary.n_pairs, "n_masters": n_best, "n_best": n_best,
             "n_one_to_one": n_one, "n_gaia": summary.n_a, "n_survey": summary.n_b,
             "epoch": summary.epoch, "order": summary.order,
             "partitions": summary.partitions, "computed": summary.computed,
             "resumed": summary.resumed, "engine_seconds": summary.seconds,
             "seconds": time.perf_counter() - t0}
    write_json(out / "hats_state.json", state, indent=1)
    return state
