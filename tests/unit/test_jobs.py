# SPDX-License-Identifier: BSD-3-Clause
"""casuvo.jobs: the job descriptions round-trip through JSON, and a bad one is refused by name.

Also ``python -m casuvo.jobs`` itself on bad input (exit status 2, one JSON
result line naming the field), and the settings a launched job gets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casuvo.config import Settings
from casuvo.jobs import (
    JOB_KINDS,
    BandMergeJob,
    BulkCutoutJob,
    CatalogueColumns,
    HatsExportJob,
    Job,
    JobError,
    JobFailedError,
    JobResult,
    NeighbourTableJob,
    PipelinePlotsJob,
    PipelineRunJob,
    RapidJob,
    SimulateJob,
    SpectroSimulateJob,
    XmatchJob,
)
from casuvo.jobs.launch import settings_environment

JOBS = [
    SimulateJob(Path("/var/data"), 20161),
    SimulateJob(Path("/var/data"), 7, detector_scale=0.5, density_factor=2.0,
                gaia_dir=Path("/g")),
    PipelineRunJob(Path("/p/vista/config.toml"), Path("/r"), Path("/g"), Path("/o"),
                   night="20240510", workers=2, progress=False),
    PipelinePlotsJob(("vista", "vst")),
    BandMergeJob("vst", Path("/products"), Path("/products/vst/merged/vst_sources.fits")),
    NeighbourTableJob("vista", Path("/s.fits"), (Path("/g1.fits"), Path("/g2.fits")), 2.0,
                      Path("/x"), scheduler="tcp://h:8786"),
    HatsExportJob("gaia_sources", (Path("/g1.fits"),), Path("/hats"), margin_arcsec=5.0),
    XmatchJob(CatalogueColumns(Path("/a.parquet"), id="source_id", pmra="pmra",
                               pmdec="pmdec", ref_epoch=2016.0),
              CatalogueColumns(Path("/b.fits"), epoch="mjd"), 1.5, Path("/out"),
              order=3, output_format="fits"),
    XmatchJob(CatalogueColumns(Path("/a.fits"), ref_epoch="ref_epoch"),
              CatalogueColumns(Path("/b.fits")), 1.0, Path("/out"), epoch=2012.5),
    SpectroSimulateJob(Path("/var/data"), 20161, ("ges", "weave")),
    BulkCutoutJob(Path("/wd/plan.jsonl"), Path("/wd"), Path("/wd/progress")),
    BulkCutoutJob(Path("/wd/plan.jsonl"), Path("/wd"), Path("/wd/progress"),
                  scheduler="tcp://h:8786", workers=4),
    RapidJob(Path("/p/vst/config.toml"), Path("/raw"), Path("/products"), Path("/g"),
             Path("/alerts"), "casuvo.example", extended=Path("/pn.fits"),
             night="20240510", once=False, interval_s=2.5, duration_s=60.0),
]


def test_every_kind_is_exercised() -> None:
    assert {type(j) for j in JOBS} == set(JOB_KINDS.values())


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.kind)
def test_round_trip(job: Job) -> None:
    text = job.to_json()
    assert "\n" not in text
    data = json.loads(text)
    assert data["kind"] == job.kind
    assert all(not isinstance(v, dict) or "path" in v for v in data.values())
    again = Job.from_json(text)
    assert again == job
    assert type(job).from_json(text) == job


def test_paths_are_strings_and_tuples_lists() -> None:
    data = json.loads(JOBS[5].to_json())
    assert data == {"kind": "neighbour-table", "survey": "vista", "sources": "/s.fits",
                    "gaia": ["/g1.fits", "/g2.fits"], "radius_arcsec": 2.0, "out_dir": "/x",
                    "workers": None, "scheduler": "tcp://h:8786", "progress": True,
                    "engine": "memory"}


def test_ints_become_floats_where_floats_are_expected() -> None:
    job = Job.from_json('{"kind": "hats-export", "name": "n", "files": ["/f"], '
                        '"out_dir": "/o", "margin_arcsec": 10}')
    assert job == HatsExportJob("n", (Path("/f"),), Path("/o"), margin_arcsec=10.0)
    assert isinstance(job.margin_arcsec, float)


@pytest.mark.parametrize("text, message", [
    ("not json", "job: not JSON"),
    ("[1, 2]", "job: expected a JSON object"),
    ('{"survey": "vista"}', "field kind must be one of"),
    ('{"kind": "nosuch"}', "field kind must be one of"),
    ('{"kind": "band-merge", "survey": "vst", "products_dir": "/p"}',
     "band-merge job: missing field out"),
    ('{"kind": "band-merge", "survey": "vst", "products_dir": "/p", "out": "/o", '
     '"colour": 1}', "band-merge job: unknown field(s) colour"),
    ('{"kind": "band-merge", "survey": 3, "products_dir": "/p", "out": "/o"}',
     "band-merge job.survey: expected str, got 3"),
    ('{"kind": "band-merge", "survey": "vst", "products_dir": "", "out": "/o"}',
     "band-merge job.products_dir: expected Path"),
    ('{"kind": "pipeline-plots", "surveys": "vista"}',
     "pipeline-plots job.surveys: expected tuple"),
    ('{"kind": "pipeline-plots", "surveys": ["vista", 2]}',
     "pipeline-plots job.surveys[1]: expected str, got 2"),
    ('{"kind": "simulate", "out": "/o", "seed": true}', "simulate job.seed: expected int"),
    ('{"kind": "simulate", "out": "/o", "seed": 1.5}', "simulate job.seed: expected int"),
    ('{"kind": "simulate", "out": "/o", "seed": 1, "detector_scale": "big"}',
     "simulate job.detector_scale: expected float | None, got 'big'"),
    ('{"kind": "simulate", "out": "/o", "seed": 1, "density_factor": null}',
     "simulate job.density_factor: expected float, got None"),
    ('{"kind": "pipeline-run", "config": "/c", "raw_dir": "/r", "gaia_dir": "/g", '
     '"products_dir": "/p", "progress": "no"}', "pipeline-run job.progress: expected bool"),
    ('{"kind": "xmatch", "a": {"path": "/a"}, "b": {"ra": "ra"}, "radius_arcsec": 1, '
     '"out_dir": "/o"}', "xmatch job.b: missing field path"),
    ('{"kind": "xmatch", "a": {"path": "/a", "ref_epoch": [2016]}, "b": {"path": "/b"}, '
     '"radius_arcsec": 1, "out_dir": "/o"}', "xmatch job.a.ref_epoch: expected"),
])
def test_bad_job_is_refused_by_field(text: str, message: str) -> None:
    with pytest.raises(JobError) as info:
        Job.from_json(text)
    assert message in str(info.value)


def test_from_json_of_a_class_wants_that_kind() -> None:
    with pytest.raises(JobError, match="field kind must be 'band-merge', not 'simulate'"):
        BandMergeJob.from_json(JOBS[0].to_json())


def test_result_round_trip_and_status() -> None:
    ok = JobResult("band-merge", "ok", {"sources": 12, "out": "/o"}, None, 1.5)
    assert JobResult.from_json(ok.to_json()) == ok
    assert ok.exit_status == 0 and ok.raise_for_status() is ok
    bad = JobResult("band-merge", "usage-error", {}, "vst: no tile passed QC", 0.1)
    assert bad.exit_status == 2
    with pytest.raises(JobFailedError, match="no tile passed QC") as info:
        bad.raise_for_status()
    assert info.value.result == bad
    assert JobResult("x", "failed").exit_status == 1
    with pytest.raises(JobError, match="no status"):
        JobResult.from_json('{"kind": "x", "status": "maybe"}')


def test_settings_travel_to_the_job(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", var=tmp_path / "var", db_port=5555,
                        manage_db=False, scale=2.5,
                        survey_dirs=(tmp_path / "a", tmp_path / "b"))
    env = settings_environment(settings)
    assert env["CASUVO_MANAGE_DB"] == "false" and env["CASUVO_DB_PORT"] == "5555"
    assert Settings.from_env(env) == settings


def _main(stdin: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "casuvo.jobs", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)


def test_main_refuses_a_bad_job_with_one_result_line(tmp_path: Path) -> None:
    proc = _main('{"kind": "band-merge", "survey": "vst", "out": "/o"}')
    assert proc.returncode == 2
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    result = JobResult.from_json(lines[0])
    assert result.status == "usage-error"
    assert result.message == "band-merge job: missing field products_dir"
    path = tmp_path / "job.json"
    path.write_text('{"kind": "simulate", "out": "/o", "seed": "x"}')
    proc = _main("", str(path))
    assert proc.returncode == 2
    assert "simulate job.seed: expected int" in JobResult.from_json(proc.stdout).message
    proc = _main("", str(tmp_path / "nosuch.json"))
    assert proc.returncode == 2
    assert "nosuch.json: No such file" in JobResult.from_json(proc.stdout).message


def test_main_turns_a_library_usage_error_into_a_result(tmp_path: Path) -> None:
    """A survey the registry does not know: refused before any library work, exit 2."""
    home = Path(__file__).resolve().parents[2]
    env = {**settings_environment(Settings(home=home, var=tmp_path)),
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(home)}
    job = BandMergeJob("nosuch", tmp_path, tmp_path / "m.fits")
    proc = _main(job.to_json(), env=env)
    assert proc.returncode == 2, proc.stderr
    result = JobResult.from_json(proc.stdout)
    assert result.status == "usage-error"
    assert "'nosuch' is not one of" in result.message and "vista" in result.message
    assert not (tmp_path / "m.fits").exists()
