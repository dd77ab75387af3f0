# SPDX-License-Identifier: BSD-3-Clause
"""A pytest plugin that turns every skip into a failure.

``make test`` installs everything the suite needs (STILTS, Chromium and its
driver, selenium, both Python environments), so a skipped test can only mean
that something the README's commands promise is missing, or that a test hides
itself; either way the run must not look green.  Skips come from markers
(``skip``, ``skipif``), from ``pytest.skip()`` or ``pytest.importorskip()``
inside a test or fixture, and from the same at module level during collection:
all of them end as failures that say why.

``tests/conftest.py`` imports these hooks, so they are active for both test
runs of ``make test`` (``tests/unit tests/integration`` and ``tests/compute``);
another suite can load them with ``-p tests.noskip``.  An expected failure
(``xfail``) is not a skip and is left to ``xfail_strict``.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

__all__ = ["MESSAGE", "missing_hooks", "pytest_make_collect_report",
           "pytest_runtest_makereport"]

#: The start of every failure this plugin makes (tests/unit/test_noskip.py looks for it).
MESSAGE = "skipped, and casuvo's test suite allows no skips"


def _reason(longrepr: object) -> str:
    """The skip's ``path:line: reason`` (pytest keeps it as a 3-tuple), or its text."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, line, reason = longrepr
        return f"{path}:{line}: {reason}"
    return str(longrepr)


def _explain(longrepr: object) -> str:
    return (f"{MESSAGE}: {_reason(longrepr)}\n(install what is missing with "
            "deploy/local/install.sh, or make the test run; never skip it)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A skip in setup, call or teardown of a test becomes a failure of that phase."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = _explain(report.longrepr)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A module that skips itself while being collected becomes a collection error."""
    report = yield
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = _explain(report.longrepr)
    return report


def missing_hooks(config: pytest.Config) -> list[str]:
    """The hooks of this plugin that the run of ``config`` has not loaded (none: all are).

    What the unit and compute runs check, each of itself.
    """
    hooks = (pytest_runtest_makereport, pytest_make_collect_report)
    manager = config.pluginmanager
    return [hook.__name__ for hook in hooks
            if hook not in [impl.function
                            for impl in getattr(manager.hook, hook.__name__).get_hookimpls()]]
