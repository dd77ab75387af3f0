# SPDX-License-Identifier: BSD-3-Clause
"""The cross-match on HATS partitions against the in-memory engine, STILTS and LSDB.

The synthetic sky of ``test_xmatch`` (fields at RA = 0, the pole and two
HEALPix vertices, pairs straddling pixel corners, crowding) is written as HATS
collections by hats-import, with small partitions at several orders so that
many pairs cross partition boundaries; then the demo's own HATS exports (VST
merged sources × Gaia).  Expected values come from the in-memory engine on the
same rows (itself checked against STILTS, astropy and the truth in
``test_xmatch``) and from STILTS directly on the demo.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from casuvo.catalogue.hatsexport import ExportArgs, export_hats
from casuvo.xmatch import TableSpec, XmatchArgs, XmatchError, run_xmatch
from casuvo.xmatch.hatsplan import open_hats
from tests.compute.xmatchsky import RADIUS, build_movers

QUALITY = ("number_of_neighbours", "number_of_mates", "best", "mutual", "ambiguous")


def _hats(table: Path, root: Path, rows: int, client) -> Path:
    """A FITS table as a HATS collection with a 10″ margin catalogue (casuvo's exporter,
    which is hats-import)."""
    state = export_hats(ExportArgs(table.stem, (table,), root, pixel_threshold=rows,
                                   highest_order=9, margin_arcsec=10.0), client=client)
    return Path(state["path"])


@pytest.fixture(scope="module")
def hats_sky(sky: dict, client, tmp_path_factory) -> dict:
    """The sky as two HATS collections (≤ 400 and ≤ 700 rows a partition, 10″ margins)."""
    root = tmp_path_factory.mktemp("hats_sky")
    return {"a": _hats(sky["a"], root, 400, client), "b": _hats(sky["b"], root, 700, client)}


def _in_memory(sky: dict, client, out: Path, swap: bool = False) -> dict:
    a = TableSpec(sky["a"], id="source_id")
    b = TableSpec(sky["b"], id="sourceID")
    if swap:
        a, b = b, a
    run_xmatch(XmatchArgs(a, b, RADIUS, out, progress=False), client=client)
    t = pq.read_table(out / "pairs.parquet").to_pandas()
    return {(int(r.a_id), int(r.b_id)): (r.angular_distance, *(getattr(r, q) for q in QUALITY))
            for r in t.itertuples()}


def _hats_pairs(out: Path) -> dict:
    t = pq.read_table(out / "pairs").to_pandas() if (out / "pairs").is_dir() else None
    assert t is not None
    rows = {(int(r.a_id), int(r.b_id)): (r.angular_distance, *(getattr(r, q) for q in QUALITY))
            for r in t.itertuples()}
    assert len(rows) == len(t), "a pair was found twice"
    return rows


def _same(mine: dict, theirs: dict) -> None:
    assert mine.keys() == theirs.keys()
    assert max(abs(mine[k][0] - theirs[k][0]) for k in mine) < 1e-9      # arcsec
    for i, name in enumerate(QUALITY, start=1):
        differ = [k for k in mine if mine[k][i] != theirs[k][i]]
        assert differ == [], f"{name} differs for {len(differ)} pairs, e.g. {differ[:3]}"


@pytest.fixture(scope="module")
def run_ab(sky: dict, hats_sky: dict, client, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("hats_run") / "ab"
    summary = run_xmatch(XmatchArgs(TableSpec(hats_sky["a"], id="source_id"),
                                    TableSpec(hats_sky["b"], id="sourceID"), RADIUS, out,
                                    progress=False), client=client)
    return summary, out


def test_partitions_at_several_orders(hats_sky: dict) -> None:
    a, b = open_hats(hats_sky["a"], "A"), open_hats(hats_sky["b"], "B")
    assert len(set(a.orders.tolist())) >= 2 and len(set(b.orders.tolist())) >= 2
    assert a.orders.size > 6 and b.orders.size > 4
    assert b.margin_arcsec == 10.0 and b.margin_path is not None


def test_pairs_and_quality_equal_the_in_memory_engine(sky: dict, run_ab: tuple, client,
                                                       tmp_path: Path) -> None:
    summary, out = run_ab
    assert summary.n_b > summary.n_a          # B chooses first in the one-to-one choice
    theirs = _in_memory(sky, client, tmp_path / "mem")
    mine = _hats_pairs(out)
    assert len(mine) == summary.n_pairs > 5000
    _same(mine, theirs)
    assert summary.n_best == sum(v[3] for v in theirs.values())
    assert summary.n_mutual == sum(v[4] for v in theirs.values())


def test_a_chooses_first_when_larger(sky: dict, hats_sky: dict, client,
                                     tmp_path: Path) -> None:
    """A and B swapped: A is larger and chooses first."""
    out = tmp_path / "ba"
    summary = run_xmatch(XmatchArgs(TableSpec(hats_sky["b"], id="sourceID"),
                                    TableSpec(hats_sky["a"], id="source_id"), RADIUS, out,
                                    progress=False), client=client)
    assert summary.n_a > summary.n_b
    _same(_hats_pairs(out), _in_memory(sky, client, tmp_path / "mem", swap=True))


def test_without_a_margin_catalogue(sky: dict, hats_sky: dict, run_ab: tuple, client,
                                    tmp_path: Path) -> None:
    """B's main catalogue alone: the neighbouring partitions are read instead."""
    main_b = hats_sky["b"] / "b"
    assert open_hats(main_b, "B").margin_path is None
    out = tmp_path / "nomargin"
    run_xmatch(XmatchArgs(TableSpec(hats_sky["a"], id="source_id"),
                          TableSpec(main_b, id="sourceID"), RADIUS, out, progress=False),
               client=client)
    _same(_hats_pairs(out), _hats_pairs(run_ab[1]))


def test_on_a_process_cluster_equals_the_local_run(hats_sky: dict, run_ab: tuple,
                                                   process_cluster: dict, tmp_path: Path) -> None:
    """Through ``--scheduler`` on ``casuvo cluster up``'s processes: each worker process
    reads its own partitions from disk."""
    out = tmp_path / "cluster"
    summary = run_xmatch(XmatchArgs(TableSpec(hats_sky["a"], id="source_id"),
                                    TableSpec(hats_sky["b"], id="sourceID"), RADIUS, out,
                                    progress=False, scheduler=process_cluster["address"]))
    assert summary.computed == summary.partitions
    _same(_hats_pairs(out), _hats_pairs(run_ab[1]))


def test_resume_skips_finished_partitions(hats_sky: dict, run_ab: tuple, client,
                                          tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "resume"
    shutil.copytree(run_ab[1], out)
    markers = sorted((out / "work").glob("*.done"))
    for marker in markers[:2]:                       # as if the run had died there
        marker.unlink()
    again = run_xmatch(XmatchArgs(TableSpec(hats_sky["a"], id="source_id"),
                                  TableSpec(hats_sky["b"], id="sourceID"), RADIUS, out,
                                  progress=False), client=client)
    assert again.computed == 2 and again.resumed == again.partitions - 2
    _same(_hats_pairs(out), _hats_pairs(run_ab[1]))


def test_proper_motion_bound_from_statistics(client, tmp_path: Path) -> None:
    """Gaia-like stars moving up to 1″/yr, their counterparts seen 4–7 years earlier:
    moved to each B row's epoch (an MJD column), every star finds its own, although the
    motion (up to 7″) is wider than the catalogues' 10″ margins allow for 3 d."""
    root = tmp_path / "movers"
    root.mkdir()
    build_movers(root)
    a = _hats(root / "gaia.fits", root, 20, client)
    b = _hats(root / "b.fits", root, 20, client)
    out = tmp_path / "pm"
    summary = run_xmatch(XmatchArgs(
        TableSpec(a, id="source_id", pmra="pmra", pmdec="pmdec", ref_epoch="ref_epoch"),
        TableSpec(b, id="id", epoch="mjd"), RADIUS, out, progress=False), client=client)
    assert summary.margin_arcsec > 3 * 5.0 and summary.partitions >= 1
    pairs = pq.read_table(out / "pairs").to_pandas()
    best = pairs[pairs.best]
    assert len(best) == 60 and (best.a_id == best.b_id).all()
    assert best.angular_distance.max() < 0.06
    plain = run_xmatch(XmatchArgs(TableSpec(a, id="source_id"), TableSpec(b, id="id"), RADIUS,
                                  tmp_path / "plain", progress=False), client=client)
    assert plain.n_pairs == 1                      # only the star without a proper motion


@pytest.mark.parametrize("case", ["mixed", "no id", "thin margin", "not hats",
                                  "columns without hats"])
def test_bad_input_raises_and_writes_nothing(case: str, sky: dict, hats_sky: dict,
                                             tmp_path: Path) -> None:
    a = TableSpec(hats_sky["a"], id="source_id")
    b = TableSpec(hats_sky["b"], id="sourceID")
    kw: dict = {}
    if case == "mixed":
        b, match = TableSpec(sky["b"], id="sourceID"), "both inputs must be HATS"
    elif case == "no id":
        a, match = TableSpec(hats_sky["a"]), "needs an identifier column"
    elif case == "thin margin":
        kw, match = {"margin_arcsec": 0.5}, "narrower than the radius"
    elif case == "columns without hats":
        a, b = TableSpec(sky["a"], id="source_id"), TableSpec(sky["b"], id="sourceID")
        kw, match = {"pair_columns": dict}, "pair_columns needs HATS inputs"
    else:
        (tmp_path / "fake").mkdir()
        (tmp_path / "fake" / "properties").write_text("nothing=here\n")
        a, match = TableSpec(tmp_path / "fake", id="x"), "cannot be read as HATS"
    out = tmp_path / "out"
    with pytest.raises(XmatchError, match=match):
        run_xmatch(XmatchArgs(a, b, RADIUS, out, progress=False, **kw))
    assert not out.exists()


# ------------------------------------------------------------------ the demo's exports

def _flat(collection: Path, columns: list[str], out: Path) -> Path:
    """All rows of a HATS catalogue as one FITS table (for STILTS and the in-memory engine)."""
    cat = open_hats(collection, "x")
    table = pq.read_table(cat.path / "dataset", columns=columns)
    Table({c: table.column(c).to_numpy() for c in columns}).write(out)
    return out


def test_demo_exports_equal_stilts(settings, client, tmp_path: Path) -> None:
    """VST's public merged sources × Gaia from ``casuvo export hats``, 2″: STILTS's pairs."""
    hats_dir = settings.data_dir / "hats"
    vst, gaia = hats_dir / "vst_sources", hats_dir / "gaia_sources"
    out = tmp_path / "demo"
    summary = run_xmatch(XmatchArgs(TableSpec(vst, id="sourceID"),
                                    TableSpec(gaia, id="source_id"), 2.0, out,
                                    progress=False), client=client)
    mine = _hats_pairs(out)
    a = _flat(vst, ["sourceID", "ra", "dec"], tmp_path / "vst.fits")
    b = _flat(gaia, ["source_id", "ra", "dec"], tmp_path / "gaia.fits")
    found = {}
    for find in ("all", "best"):
        res = tmp_path / f"{find}.fits"
        subprocess.run(["stilts", "tmatch2", f"in1={a}", f"in2={b}", "matcher=sky",
                        "values1=ra dec", "values2=ra dec", "params=2.0", f"find={find}",
                        "join=1and2", f"out={res}", "ofmt=fits"],
                       check=True, capture_output=True)
        t = Table.read(res)
        found[find] = dict(zip(zip(t["sourceID"].tolist(), t["source_id"].tolist(),
                                   strict=True), t["Separation"].tolist(), strict=True))
    assert mine.keys() == found["all"].keys() and len(mine) == summary.n_pairs > 1000
    assert max(abs(mine[k][0] - found["all"][k]) for k in mine) < 1e-6   # STILTS's float
    assert {k for k, v in mine.items() if v[4]} == found["best"].keys()
    assert summary.n_a == len(Table.read(a)) and summary.n_b == len(Table.read(b))
