# SPDX-License-Identifier: BSD-3-Clause
"""The compute run of ``make test`` has the no-skip hooks too (tests/noskip.py).

tests/unit/test_noskip.py shows that the hooks turn every kind of skip into a
failure; this checks that the separate ``pytest tests/compute`` run, in the
compute environment, loads them through tests/conftest.py as well.
"""

from __future__ import annotations

import pytest

from tests import noskip


def test_the_compute_run_loads_the_no_skip_hooks(request: pytest.FixtureRequest) -> None:
    assert noskip.missing_hooks(request.config) == []
