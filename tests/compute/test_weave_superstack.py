# SPDX-License-Identifier: BSD-3-Clause
"""WEAVE superstacks after `casuvo demo`: one per OB specification and arm, in the L1 order.

The demo's WEAVE plan observes the LR specification of NGC 6791 in two OBs
(``obspec`` of ``raw/weave/obs_blocks.fits``); the pipeline combines the singles
of both into ``products/weave/superstacks/superstack_<lowest run>.fit`` per arm.
The expected runs come from the raw files' headers and the expected arrays from
the singles, with numpy here; the resume test works on copies in a temporary
directory.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from casuvo.config import Settings
from casuvo.pipeline.spectro_tasks import load_previous, make_superstacks


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return Settings.from_env().data_dir


def _obspec_runs(data_dir: Path) -> dict[tuple[str, str], list[int]]:
    """(OBSpec, arm) → the runs of its observed OBs, for specifications with ≥ 2 OBs."""
    plan = fits.getdata(data_dir / "raw" / "weave" / "obs_blocks.fits")
    observed = {int(r["ob_id"]): str(r["obspec"]) for r in plan if r["planned"] == "observed"}
    obs_of: dict[str, set[int]] = defaultdict(set)
    for ob_id, spec in observed.items():
        obs_of[spec].add(ob_id)
    runs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for path in sorted((data_dir / "raw" / "weave").glob("2*/r*.fit")):
        h = fits.getheader(path)
        spec = observed.get(int(h["OBID"]))
        if spec is not None and len(obs_of[spec]) >= 2:
            runs[(spec, str(h["ARM"]))].append(int(h["RUN"]))
    return {k: sorted(v) for k, v in runs.items()}


def _single(data_dir: Path, run: int) -> Path:
    found = list((data_dir / "products" / "weave").glob(f"2*/single_{run:07d}.fit"))
    assert len(found) == 1, f"single_{run:07d}.fit: {found}"
    return found[0]


def test_superstacks_combine_the_singles_of_an_obspec(data_dir: Path) -> None:
    """Per arm: the fixed HDU order, the lowest run's name, RUNS0nn = all the OBSpec's
    runs, DATA (and DATA_NOSS) = the singles' inverse-variance mean by CNAME, IVAR
    (IVAR_NOSS) = their sum."""
    expected = _obspec_runs(data_dir)
    assert expected, "the demo plan has no OB specification observed in two OBs"
    assert {arm for _, arm in expected} == {"RED", "BLUE"}
    for (spec, arm), runs in expected.items():
        path = data_dir / "products" / "weave" / "superstacks" / f"superstack_{runs[0]:07d}.fit"
        assert path.is_file(), f"no {path.name} for {spec} {arm}"
        with fits.open(path) as h:
            assert [x.name for x in h] == ["PRIMARY", f"{arm}_DATA", f"{arm}_IVAR",
                                           f"{arm}_DATA_NOSS", f"{arm}_IVAR_NOSS",
                                           f"{arm}_SENSFUNC", "FIBTABLE"]
            p = h[0].header
            assert p["CAT-NAME"] == f"./{spec}.xml"
            assert p["RUN"] == runs[0]
            assert sorted(v for k, v in p.items() if re.fullmatch(r"RUNS\d{3}", k)) == runs
            assert sorted(v for k, v in h[1].header.items() if re.fullmatch(r"PROV\d{3}", k)) \
                == [f"single_{r:07d}.fit" for r in runs]
            got = {ext: np.asarray(h[f"{arm}_{ext}"].data, dtype=np.float64)
                   for ext in ("DATA", "IVAR", "DATA_NOSS", "IVAR_NOSS")}
            names = [str(c).strip() for c in h["FIBTABLE"].data["CNAME"]]
        assert len(set(names)) == len(names)
        row = {c: i for i, c in enumerate(names)}
        w = {k: np.zeros_like(got["DATA"]) for k in ("", "_NOSS")}
        s = {k: np.zeros_like(got["DATA"]) for k in ("", "_NOSS")}
        for run in runs:
            with fits.open(_single(data_dir, run)) as h:
                assert h[0].header["CAT-NAME"] == f"./{spec}.xml"
                idx = np.array([row[str(c).strip()] for c in h["FIBTABLE"].data["CNAME"]])
                for k in w:
                    iv = np.asarray(h[f"{arm}_IVAR{k}"].data, dtype=np.float64)
                    d = np.asarray(h[f"{arm}_DATA{k}"].data, dtype=np.float64)
                    w[k][idx] += iv
                    s[k][idx] += iv * d
        for k in w:
            assert (w[k] > 0).any()
            mean = np.divide(s[k], w[k], out=np.zeros_like(s[k]), where=w[k] > 0)
            np.testing.assert_allclose(got[f"IVAR{k}"], w[k], rtol=1e-5, atol=0)
            np.testing.assert_allclose(got[f"DATA{k}"], mean, rtol=1e-5,
                                       atol=1e-5 * np.median(np.abs(mean[w[k] > 0])))


def test_superstacks_resume_and_remake(data_dir: Path, tmp_path: Path) -> None:
    """Made once, then found done while the OBs are unchanged; remade when one OB's
    reduction changes (its input key)."""
    expected = _obspec_runs(data_dir)
    spec = next(iter(expected))[0]
    plan = fits.getdata(data_dir / "raw" / "weave" / "obs_blocks.fits")
    obs = []
    for r in plan:
        if str(r["obspec"]) == spec and r["planned"] == "observed":
            res = load_previous(data_dir / "products" / "weave", int(r["ob_id"]))
            assert res is not None
            for f in res.files:
                if Path(f).name.startswith("single_"):
                    (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(data_dir / f, tmp_path / f)
            obs.append(res)
    out = tmp_path / "products" / "weave"
    first = make_superstacks("weave", spec, obs, tmp_path, out)
    assert first is not None and not first.resumed
    assert sorted(Path(f).name for f in first.files) == sorted(
        f"superstack_{runs[0]:07d}.fit" for (s, _), runs in expected.items() if s == spec)
    again = make_superstacks("weave", spec, obs, tmp_path, out)
    assert again is not None and again.resumed and again.files == first.files
    obs[0].key = "changed"
    remade = make_superstacks("weave", spec, obs, tmp_path, out)
    assert remade is not None and not remade.resumed
