# SPDX-License-Identifier: BSD-3-Clause
"""Collect the benchmarks' JSON figures into ``bench/results.md`` and ``bench/results.json``.

Every bench script run with ``--json PATH`` writes one document::

    {"bench": "<name>", "figures": [{"name": ..., "value": ..., "unit": ...,
      "baseline": ..., "baseline_value": ..., "ratio": ..., "goal": "...",
      "met": true | false | null}, ...]}

where ``baseline`` names the strongest comparable path measured *in the same
run* and ``ratio`` is stated in the direction its ``goal`` reads (a goal of
"≥ 0.6×" is held against a ratio where bigger is better).  ``make bench``
writes them as ``var/bench/<name>.json`` and then runs this script, which
makes one table per bench.  Standard library only: the bench scripts of both
environments import :func:`figure` and :func:`write_json` from here.

Usage: ``python bench/report.py [FILE.json ...] [--in var/bench]
[--md bench/results.md] [--json bench/results.json]`` (the named files, or
every ``*.json`` of ``--in``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Table order in the report; benches not listed follow alphabetically.
ORDER = ("ingest", "cone", "concurrency", "load", "hostile", "adql_limits", "images", "pipeline",
         "xmatch")


def figure(name: str, value: float | None, unit: str, *, baseline: str | None = None,
           baseline_value: float | None = None, ratio: float | None = None,
           goal: str | None = None, met: bool | None = None) -> dict[str, Any]:
    """One figure of a bench, in the shape :func:`collect` reads.

    ``ratio`` defaults to ``value / baseline_value``; give it explicitly when
    the goal reads the other way (e.g. a throughput from two times).
    ``met`` stays ``None`` when the figure is held against no goal.
    """
    if ratio is None and value is not None and baseline_value:
        ratio = value / baseline_value
    return {"name": name, "value": _finite(value), "unit": unit, "baseline": baseline,
            "baseline_value": _finite(baseline_value), "ratio": _finite(ratio),
            "goal": goal, "met": met}


def write_json(path: Path | str, bench: str, figures: Sequence[dict[str, Any]],
               **extra: Any) -> Path:
    """Write one bench's figures (plus ``extra`` context such as the rows used)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"bench": bench, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "figures": list(figures), **extra}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path


def _finite(x: float | None) -> float | None:
    """JSON has no NaN: a missing or undefined number is null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def collect(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The bench documents of ``paths``, in report order.

    Other JSON files in the folder (a bench's own raw output) are passed over
    with a note, so that they cannot stop the report.
    """
    docs = []
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            print(f"{path}: not JSON ({exc}); left out")
            continue
        if not isinstance(doc, dict) or "bench" not in doc or "figures" not in doc:
            print(f"{path}: not a bench document (no 'bench' and 'figures'); left out")
            continue
        doc.setdefault("source", str(path))
        docs.append(doc)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(docs, key=lambda d: (rank.get(d["bench"], len(ORDER)), d["bench"]))


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def _cell(text: Any) -> str:
    return str(text if text is not None else "—").replace("|", "\\|")


def markdown(docs: Sequence[dict[str, Any]]) -> str:
    """The report: a summary of the goals, then one table per bench."""
    lines = ["# casuvo benchmarks", "",
             "Written by `bench/report.py` from `var/bench/*.json` (`make bench`). Every",
             "figure stands beside its baseline measured in the same run; the ratio reads",
             "in the direction of its goal.", ""]
    goals = [(d["bench"], f) for d in docs for f in d["figures"] if f.get("goal")]
    met = sum(1 for _, f in goals if f.get("met") is True)
    lines += [f"Goals: {met} of {len(goals)} met.", ""]
    for doc in docs:
        lines += [f"## {doc['bench']}", ""]
        if doc.get("when"):
            lines += [f"Run {doc['when']}" + (f"; {doc['note']}" if doc.get("note") else "")
                      + ".", ""]
        lines += ["| figure | value | unit | baseline (same run) | baseline value | ratio "
                  "| goal | |",
                  "|---|---:|---|---|---:|---:|---|---|"]
        for f in doc["figures"]:
            lines.append("| " + " | ".join([
                _cell(f.get("name")), _num(f.get("value")), _cell(f.get("unit")),
                _cell(f.get("baseline")), _num(f.get("baseline_value")),
                "—" if f.get("ratio") is None else f"{f['ratio']:.2f}×",
                _cell(f.get("goal") or ""), _verdict(f.get("met"))]) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path,
                        help="bench documents (default: every *.json of --in)")
    parser.add_argument("--in", dest="indir", type=Path,
                        default=HERE.parent / "var" / "bench",
                        help="folder of the benches' JSON documents")
    parser.add_argument("--md", type=Path, default=HERE / "results.md")
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    paths = args.files or sorted(args.indir.glob("*.json"))
    if not paths:
        raise SystemExit(f"no bench results in {args.indir}; run the benches with --json")
    docs = collect(paths)
    if not docs:
        raise SystemExit(f"no bench documents among {len(paths)} JSON file(s) in {args.indir}")
    args.md.write_text(markdown(docs))
    args.json.write_text(json.dumps({"benches": docs}, indent=2) + "\n")
    print(f"wrote {args.md} and {args.json} ({len(docs)} benches)")


if __name__ == "__main__":
    main()
