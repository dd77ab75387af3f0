# SPDX-License-Identifier: BSD-3-Clause
"""tests/noskip.py: every way of skipping a test fails the run, with a message that says so.

Each case is a small test file run by a separate ``python -m pytest`` (this
interpreter, the plugin loaded with ``-p tests.noskip``, no project
configuration), whose exit status and report are checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import noskip
from tests.noskip import MESSAGE

ROOT = Path(__file__).resolve().parents[2]

#: name -> (test module source, reason text the failure must repeat)
CASES = {
    "marker": ('@pytest.mark.skip(reason="marker-reason")\ndef test_a():\n    pass\n',
               "marker-reason"),
    "skipif": ('@pytest.mark.skipif(True, reason="skipif-reason")\ndef test_a():\n    pass\n',
               "skipif-reason"),
    "call": ('def test_a():\n    pytest.skip("call-reason")\n', "call-reason"),
    "fixture": ('@pytest.fixture\ndef thing():\n    pytest.skip("fixture-reason")\n\n'
                'def test_a(thing):\n    pass\n', "fixture-reason"),
    "importorskip": ('def test_a():\n    pytest.importorskip("no_such_module_xyz")\n',
                     "no_such_module_xyz"),
    "module": ('pytest.importorskip("no_such_module_xyz")\n\ndef test_a():\n    pass\n',
               "no_such_module_xyz"),
}


def _run(tmp_path: Path, source: str, *plugin: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test_case.py"
    test.write_text("import pytest\n\n" + textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin, "-rA",
         "--rootdir", str(tmp_path), str(test)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_skip_fails_the_run_with_its_reason(tmp_path: Path, case: str) -> None:
    source, reason = CASES[case]
    proc = _run(tmp_path, source, "-p", "tests.noskip")
    output = proc.stdout + proc.stderr
    # A module that skips itself stops the run as a collection error.
    failed = pytest.ExitCode.INTERRUPTED if case == "module" else pytest.ExitCode.TESTS_FAILED
    assert proc.returncode == failed, output
    assert MESSAGE in output, output
    assert reason in output, output
    assert " skipped" not in output.splitlines()[-1], output


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_file_only_skips_without_the_plugin(tmp_path: Path, case: str) -> None:
    """Control: without the plugin each case is an ordinary skip and the run passes."""
    proc = _run(tmp_path, CASES[case][0])
    output = proc.stdout + proc.stderr
    # pytest exits 5 when a module skipping itself leaves nothing to run.
    passed = pytest.ExitCode.NO_TESTS_COLLECTED if case == "module" else pytest.ExitCode.OK
    assert proc.returncode == passed, output
    assert MESSAGE not in output
    assert "1 skipped" in output.splitlines()[-1], output


def test_passing_and_xfail_tests_are_untouched(tmp_path: Path) -> None:
    proc = _run(tmp_path, 'def test_ok():\n    pass\n\n'
                '@pytest.mark.xfail(reason="known", strict=True)\n'
                'def test_known():\n    assert False\n', "-p", "tests.noskip")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "1 passed, 1 xfailed" in output.splitlines()[-1], output


def test_the_suite_loads_the_plugin(request: pytest.FixtureRequest) -> None:
    """This very run has the hooks: tests/conftest.py brings them in."""
    assert noskip.missing_hooks(request.config) == []
