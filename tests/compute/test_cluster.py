# SPDX-License-Identifier: BSD-3-Clause
"""The VST pipeline on a real multi-process Dask cluster (``casuvo cluster up``),
through ``--scheduler``: a worker killed mid-run is restarted by its nanny, its tasks
run again, and the run ends with the demo's own products (pixels and zero points)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from distributed import Client

from casuvo.pipeline.config import load_config
from casuvo.pipeline.runner import run_pipeline
from tests.compute.smallsurvey import VST_CONFIG, assert_same_products_as_demo

pytestmark = pytest.mark.long


def test_pipeline_survives_a_killed_worker(process_cluster: dict, small_survey, settings
                                           ) -> None:
    address = process_cluster["address"]
    data = small_survey / "data"
    products = data / "products" / "vst"
    with Client(address, timeout=60) as client:
        before = client.run(os.getpid)
        assert len(before) == 2
        outcome: dict = {}

        def run() -> None:
            try:
                outcome["summary"] = run_pipeline(
                    load_config(VST_CONFIG), data / "raw" / "vst", data / "gaia", products,
                    dsn=settings.dsn, scheduler=address, progress=False)
            except BaseException as exc:  # reported below
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and thread.is_alive():
            if client.processing() and any(client.processing().values()):
                break
            time.sleep(0.05)
        assert thread.is_alive(), "the run ended before a worker could be killed"
        busy = [w for w, tasks in client.processing().items() if tasks]
        victim = before[busy[0]]
        os.kill(victim, signal.SIGKILL)
        thread.join(600)
        assert "error" not in outcome, outcome.get("error")
        summary = outcome["summary"]
        assert summary.failed == 0
        client.wait_for_workers(2, timeout=120)
        after = client.run(os.getpid)
        assert len(after) == 2 and victim not in after.values()
    assert sum(1 for p in summary.products if p.endswith("_st_tl.fit")) == 1
    assert_same_products_as_demo(products, settings)
