# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo demo`` as typed steps: their order from the registry, the phase table, stopping.

The steps themselves are the subcommands' operations (tested against the
running stack by the integration tests); here, what the demo adds: which
steps in which order, which may run side by side, a failed required step ends
the run, an optional one does not, and the phases are printed and written to
var/logs/demo-phases.json however the run ends.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from casuvo.cli.demo import DemoOptions, Step, demo_steps, run_steps
from casuvo.config import Settings

HOME = Path(__file__).resolve().parents[2]


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=HOME, var=tmp_path / "var")


def test_steps_follow_the_registry(settings: Settings) -> None:
    names = [s.name for s in demo_steps(settings)]
    assert names == [
        "up", "simulate", "ingest gaia", "pipelines vista vst fourmost ges weave", "publish",
        "ingest sources vista", "ingest sources vst", "xmatch vista", "xmatch vst",
        "export hats gaia.sources", "export hats vista.sources", "export hats vst.sources",
        "alerts vista", "alerts vst", "pipeline plots", "coverage", "endpoints"]
    optional = [s.name for s in demo_steps(settings) if not s.required]
    assert optional == ["pipeline plots"]


def test_what_may_overlap(settings: Settings) -> None:
    """The simulation beside the database start; the coverage beside publishing."""
    after = {s.name: s.after for s in demo_steps(settings)}
    assert after["up"] == () and after["simulate"] == ()
    pipelines = "pipelines vista vst fourmost ges weave"
    assert after["coverage"] == (pipelines,)
    assert after["pipeline plots"] == (pipelines,)
    # rapid mode needs the products and the published alerts tables only
    assert after["alerts vista"] == after["alerts vst"] == ("publish",)
    # everything else waits for all the steps before it
    assert all(a is None for n, a in after.items()
               if n not in ("up", "simulate", "coverage", "pipeline plots", "alerts vista",
                            "alerts vst"))


def _recorder(calls: list, name: str, status: int):
    def run(settings: Settings, options: DemoOptions) -> int:
        calls.append((name, options.progress))
        return status
    return run


def _phases(settings: Settings) -> dict:
    return json.loads((settings.log_dir / "demo-phases.json").read_text())


def test_all_steps_run_and_are_reported(settings: Settings, capsys) -> None:
    calls: list = []
    steps = (Step("one", _recorder(calls, "one", 0)),
             Step("optional", _recorder(calls, "optional", 3), required=False),
             Step("two", _recorder(calls, "two", 0)))
    assert run_steps(settings, steps, DemoOptions(progress=False)) == 0
    assert calls == [("one", False), ("optional", False), ("two", False)]
    report = _phases(settings)
    assert [(p["name"], p["status"]) for p in report["phases"]] == [
        ("one", "ok"), ("optional", "exit status 3"), ("two", "ok")]
    assert all(p["seconds"] >= 0 for p in report["phases"])
    assert report["cpu_seconds"] >= 0
    starts = [p["start"] for p in report["phases"]]
    assert starts == sorted(starts) and starts[0] >= 0
    out = capsys.readouterr().out.splitlines()
    assert out[-5].split() == ["phase", "start", "seconds", "status"]
    assert out[-3].split()[0] == "optional" and out[-3].endswith("exit status 3")
    assert out[-1].split()[0] == "total"


def test_a_failed_required_step_ends_the_demo(settings: Settings) -> None:
    calls: list = []
    steps = (Step("one", _recorder(calls, "one", 0)), Step("bad", _recorder(calls, "bad", 2)),
             Step("never", _recorder(calls, "never", 0)))
    assert run_steps(settings, steps, DemoOptions()) == 2
    assert [c[0] for c in calls] == ["one", "bad"]
    assert [p["status"] for p in _phases(settings)["phases"]] == ["ok", "exit status 2"]


def test_an_exception_is_reported_then_raised(settings: Settings) -> None:
    def broken(settings: Settings, options: DemoOptions) -> int:
        raise RuntimeError("no database")

    with pytest.raises(RuntimeError, match="no database"):
        run_steps(settings, (Step("up", broken),), DemoOptions())
    assert _phases(settings)["phases"][0]["status"] == "error: no database"


def test_independent_steps_run_side_by_side(settings: Settings) -> None:
    """Two steps that need nothing meet at a barrier: they cannot run one after the
    other.  The step that needs both starts after them."""
    barrier = threading.Barrier(2, timeout=30)
    calls: list = []

    def meet(name: str):
        def run(settings: Settings, options: DemoOptions) -> int:
            barrier.wait()
            calls.append(name)
            return 0
        return run

    steps = (Step("a", meet("a"), after=()), Step("b", meet("b"), after=()),
             Step("c", _recorder(calls, "c", 0)))
    assert run_steps(settings, steps, DemoOptions(), parallel=2) == 0
    assert sorted(calls[:2]) == ["a", "b"] and calls[2] == ("c", True)
    phases = _phases(settings)["phases"]
    assert [p["name"] for p in phases] == ["a", "b", "c"]
    assert phases[2]["start"] >= max(p["start"] + p["seconds"] for p in phases[:2]) - 0.1


def test_a_failure_beside_a_running_step(settings: Settings) -> None:
    """A required step fails while another runs: that one finishes, no new one starts."""
    calls: list = []
    release = threading.Event()

    def slow(settings: Settings, options: DemoOptions) -> int:
        release.wait(30)
        calls.append("slow")
        return 0

    def bad(settings: Settings, options: DemoOptions) -> int:
        calls.append("bad")
        release.set()
        return 4

    steps = (Step("slow", slow, after=()), Step("bad", bad, after=()),
             Step("never", _recorder(calls, "never", 0), after=()))
    assert run_steps(settings, steps, DemoOptions(), parallel=2) == 4
    assert calls == ["bad", "slow"]
    assert [(p["name"], p["status"]) for p in _phases(settings)["phases"]] == [
        ("slow", "ok"), ("bad", "exit status 4")]


def test_a_step_needs_steps_listed_before_it(settings: Settings) -> None:
    steps = (Step("a", _recorder([], "a", 0), after=("b",)), Step("b", _recorder([], "b", 0)))
    with pytest.raises(ValueError, match="not listed before it"):
        run_steps(settings, steps, DemoOptions())
