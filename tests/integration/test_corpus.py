"""Run casuvo's request corpus (``tests/integration/corpus``) against the running stack.

Bad input must get the status and message its case names, never a 5xx; valid
input must get answers whose values the case checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.integration.corpus import Case, generate


def _endpoints() -> dict:
    casuvo = Path(sys.executable).with_name("casuvo")
    return json.loads(subprocess.run([str(casuvo), "endpoints", "--json"],
                                     capture_output=True, text=True, check=True).stdout)


CASES = generate(_endpoints())


@pytest.fixture(scope="module")
def session() -> requests.Session:
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus(case: Case, session: requests.Session) -> None:
    answer = case.send(session)
    assert answer.status_code == case.status, (
        f"{case.method} {case.url}?{case.query[:200]} → {answer.status_code}, "
        f"want {case.status}: {answer.text[:300]}")
    if case.needle:
        assert case.needle.lower() in answer.text.lower(), answer.text[:500]
    if answer.status_code >= 400:
        assert "Traceback" not in answer.text
        assert "/work/" not in answer.text and "/var/" not in answer.text, (
            "server file paths in an error answer")
    if case.check is not None:
        case.check(answer)
