"""Run casuvo's request corpus (``tests/integration/corpus``) against the running stack.

Bad input must get the status and message its case names, never a 5xx, a
traceback or a server file path; valid input must get answers whose values
the case checks against the database or the simulator's truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.corpus import Case, generate, verdict

pytestmark = pytest.mark.integration


def _endpoints() -> dict:
    casuvo = Path(sys.executable).with_name("casuvo")
    return json.loads(subprocess.run([str(casuvo), "endpoints", "--json"],
                                     capture_output=True, text=True, check=True).stdout)


CASES = generate(_endpoints())


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def test_corpus_is_large_and_covers_every_service() -> None:
    """Several hundred cases, and both halves (refusals and checked answers) per service."""
    assert len(CASES) >= 300
    for service in {c.service for c in CASES}:
        mine = [c for c in CASES if c.service == service]
        assert any(c.status >= 400 for c in mine), service


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus(case: Case, session: requests.Session) -> None:
    answer = case.send(session)
    problem = verdict(case, answer)
    assert not problem, f"{case.method} {case.url}?{case.query[:200]}: {problem}"
