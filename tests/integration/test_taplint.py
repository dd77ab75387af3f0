# SPDX-License-Identifier: BSD-3-Clause
"""STILTS taplint on the whole TAP service: zero errors."""

from __future__ import annotations

import re
import subprocess

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.long]

TOTALS = re.compile(r"Totals:\s+Errors:\s*(\d+);?\s+Warnings:\s*(\d+)")


def test_taplint_reports_no_errors(endpoints: dict, tmp_path) -> None:
    proc = subprocess.run(
        ["stilts", "-Xmx1g", "taplint", f"tapurl={endpoints['tap']}", "report=EW",
         "maxrepeat=5"], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    match = TOTALS.search(out)
    assert match, f"no totals line in taplint output:\n{out[-3000:]}"
    errors, warnings = int(match.group(1)), int(match.group(2))
    print(f"taplint: {errors} errors, {warnings} warnings")
    for line in out.splitlines():
        if line.startswith(("E-", "W-")):
            print(line)
    assert errors == 0, "\n".join(line for line in out.splitlines() if line.startswith("E-"))
