"""casuvo.dachs.synctap: which sync TAP requests run without a UWS job, and their parameters."""

from __future__ import annotations

from casuvo.dachs import synctap


def test_parameters_as_a_job_holds_them() -> None:
    # UWSJob.setParamsFromDict lower-cases names; a None does not overwrite a value
    got = synctap._job_parameters({"QUERY": "SELECT 1", "MAXREC": 10, "maxrec": None,
                                   "LANG": "ADQL", "upload": None})
    assert got == {"query": "SELECT 1", "maxrec": 10, "lang": "ADQL", "upload": None}


def test_uploads_and_dachs_test_queries_keep_the_job() -> None:
    assert synctap.takes_fast_path({"query": "SELECT 1", "upload": None})
    assert synctap.takes_fast_path({"query": "SELECT 1", "upload": []})
    assert not synctap.takes_fast_path({"query": "SELECT 1",
                                        "upload": [("t", "param:t")]})
    for magic in synctap.DACHS_MAGIC_QUERIES:
        assert not synctap.takes_fast_path({"query": magic, "upload": None})
