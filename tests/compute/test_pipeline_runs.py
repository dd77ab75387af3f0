# SPDX-License-Identifier: BSD-3-Clause
"""Pipeline runs: a corrupt raw file fails alone and by name; a killed run resumes to the
same products.  Each test runs the VST pipeline on a copy of one small OB of the demo
survey (NGC 6791 in g: three dithered exposures, their biases and flats)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from astropy.io import fits

from casuvo.jobs import JobResult, PipelineRunJob
from casuvo.pipeline.config import load_config
from casuvo.pipeline.runner import run_pipeline
from tests.compute.smallsurvey import VST_CONFIG as CONFIG
from tests.compute.smallsurvey import assert_same_products_as_demo

pytestmark = pytest.mark.long

def _run(var: Path, settings) -> object:
    cfg = load_config(CONFIG)
    return run_pipeline(cfg, var / "data" / "raw" / "vst", var / "data" / "gaia",
                        var / "data" / "products" / "vst", dsn=settings.dsn, workers=2,
                        progress=False)


def test_corrupt_raw_fails_by_name_and_the_rest_completes(small_survey, settings) -> None:
    raws = sorted((small_survey / "data" / "raw" / "vst").rglob("OMEGACAM*.fits"))
    science = [r for r in raws if fits.getheader(r, 0)["HIERARCH ESO DPR TYPE"] == "OBJECT"]
    bad = science[1]
    with bad.open("r+b") as f:
        f.truncate(bad.stat().st_size // 2)
    summary = _run(small_survey, settings)
    assert summary.failed == 1
    assert bad.name in summary.failures[0]
    # The other two exposures became pawprints and the tile was still made.
    assert sum(1 for p in summary.products if p.endswith("_st.fit")) == 2
    assert sum(1 for p in summary.products if p.endswith("_st_tl.fit")) == 1
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        (message,) = conn.execute(
            "SELECT message FROM ledger.products WHERE run_id = %s AND status = 'failed'",
            (summary.run_id,)).fetchone()
    assert bad.name in message


def test_missing_keyword_fails_by_name(small_survey, settings) -> None:
    raws = sorted((small_survey / "data" / "raw" / "vst").rglob("OMEGACAM*.fits"))
    science = [r for r in raws if fits.getheader(r, 0)["HIERARCH ESO DPR TYPE"] == "OBJECT"]
    with fits.open(science[0], mode="update") as hdul:
        del hdul[0].header["HIERARCH ESO INS FILT1 NAME"]
    summary = _run(small_survey, settings)
    assert summary.failed == 1
    assert science[0].name in summary.failures[0]
    assert "ESO INS FILT1 NAME" in summary.failures[0]


def _run_ids(settings) -> set[str]:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {r for (r,) in conn.execute("SELECT run_id FROM ledger.runs")}


def test_killed_run_resumes_to_the_same_products(small_survey, settings) -> None:
    env = dict(os.environ, CASUVO_VAR=str(small_survey), CASUVO_HOME=str(settings.home))
    data = small_survey / "data"
    job = PipelineRunJob(CONFIG, data / "raw" / "vst", data / "gaia", data / "products" / "vst",
                         workers=1, progress=False).to_json()
    cmd = [sys.executable, "-m", "casuvo.jobs"]
    known = _run_ids(settings)
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.stdin.write(job)
    proc.stdin.close()
    products = small_survey / "data" / "products" / "vst"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(products.rglob("*_st.fit.done.json")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in products.rglob("*.done.json")}
    assert done_before
    # Killed half-way: some products finished, the tile not yet.
    assert not any(products.rglob("*_st_tl.fit.done.json"))
    (killed,) = _run_ids(settings) - known
    rerun = subprocess.run(cmd, input=job, env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = JobResult.from_json(rerun.stdout).summary
    assert summary["resumed"] >= 1 and summary["failed"] == 0
    # The ledger: every product once in the rerun, none lost; what had finished
    # before the kill is resumed, not made again; nothing made twice over both runs.
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT run_id, product, status FROM ledger.products"
                            " WHERE run_id = ANY(%s)", ([killed, summary["run_id"]],)
                            ).fetchall()
    again = [(product, status) for run, product, status in rows if run == summary["run_id"]]
    names = [product for product, _ in again]
    assert len(names) == len(set(names)) and all(s in ("ok", "resumed") for _, s in again)
    assert {n for n in names if n.endswith(".fit")} >= {
        p.name for p in products.rglob("*_st*.fit") if "_conf" not in p.name}
    for product, status in again:
        if f"{product}.done.json" in done_before:
            assert status == "resumed", product
    made = [product for _, product, status in rows if status == "ok"]
    assert len(made) == len(set(made))
    assert_same_products_as_demo(products, settings)
