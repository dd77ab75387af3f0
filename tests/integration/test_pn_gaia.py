# SPDX-License-Identifier: BSD-3-Clause
"""notebooks/pn_gaia.ipynb runs against the stack and finds the true central stars.

The notebook is executed with nbclient in a kernel named ``python3`` (the
notebook's kernelspec) that a private ``JUPYTER_PATH`` points at this very
interpreter, the service environment: whatever kernels the machine has play
no part.  It writes one figure per nebula and a JSON summary under
``var/notebooks/``; the checks compare those with the simulator's truth.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from astropy.table import Table
from nbclient import NotebookClient
from PIL import Image

from casuvo.config import Settings
from casuvo.simulate.nebulae import pn_catalogue_paths

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "pn_gaia.ipynb"
BANDS = ("u", "g", "r", "Halpha")


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> dict:
    """Run a copy of the notebook once; its stdout, summary and kernel's sys.prefix."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (casuvo service environment)", "language": "python"}))
    mp = pytest.MonkeyPatch()
    for name, value in (("JUPYTER_PATH", home / "jupyter"), ("JUPYTER_RUNTIME_DIR",
                        home / "runtime"), ("IPYTHONDIR", home / "ipython"),
                        ("JUPYTER_PLATFORM_DIRS", "1"), ("MPLBACKEND", "Agg")):
        mp.setenv(name, str(value))
    summary_path = settings.var / "notebooks" / "pn_gaia.json"
    before = summary_path.stat().st_mtime_ns if summary_path.exists() else 0
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        stored = copy.deepcopy(nb)
        assert nb.metadata.kernelspec.name == "python3"
        nb.cells.append(nbformat.v4.new_code_cell("import sys; print('prefix:', sys.prefix)"))
        NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
                       ).execute()
    finally:
        mp.undo()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert summary_path.stat().st_mtime_ns > before, "the notebook wrote no new summary"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")
    return {"stored": stored, "text": text, "summary": json.loads(summary_path.read_text())}


@pytest.fixture(scope="module")
def truth(settings: Settings) -> Table:
    return Table.read(pn_catalogue_paths(settings.data_dir)[1], hdu="TRUTH",
                      character_as_bytes=False)


def test_notebook_is_stored_without_outputs_and_runs_in_the_service_env(
        executed: dict, settings: Settings) -> None:
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in executed["stored"].cells if c.cell_type == "code")
    assert f"server: {settings.server_url}/\n" in executed["text"]
    prefix = executed["text"].split("prefix: ")[1].splitlines()[0]
    assert Path(prefix).resolve() == (settings.var / "venv").resolve()


def test_best_candidates_are_the_true_central_stars(executed: dict, truth: Table) -> None:
    summary = executed["summary"]
    assert sorted(summary) == sorted(truth["name"])
    for row in truth:
        found = summary[row["name"]]
        assert found["best_source_id"] == int(row["source_id"]), row["name"]
        assert found["candidates"] >= 1
        assert (f"best {row['name']}: Gaia source_id {row['source_id']} "
                in executed["text"])


def test_ngc5189_figure_has_four_image_panels_of_real_cutouts(executed: dict) -> None:
    ngc = executed["summary"]["NGC 5189"]
    assert ngc["image_panels"] == 4
    assert sorted(ngc["cutouts"]) == sorted(BANDS)
    for band, cut in ngc["cutouts"].items():
        ny, nx = cut["shape"]
        assert ny >= 100 and nx >= 100, band          # ≥ 20″ of VST pixels
        # tiles have blank (NaN) corners and gaps; most of the cutout is sky
        assert cut["finite"] >= 0.5 * ny * nx and cut["std"] > 0, band
        # the G = 14.6 central star stands out where the candidate is
        assert cut["star_contrast"] > 20, band
    figure = Path(ngc["figure"])
    assert figure.name == "pn_NGC_5189.png"
    with Image.open(figure) as img:
        assert img.format == "PNG"
        grey = np.asarray(img.convert("L"), dtype=float)
    h, w = grey.shape
    assert (w, h) == (1200, 272)                      # figsize 15 × 3.4 in at 80 dpi
    for j in range(4):                                # the middle of each cutout panel
        x0 = j * w // 5
        middle = grey[h // 3: 2 * h // 3, x0 + w // 15: x0 + 2 * w // 15]
        assert middle.std() > 5, f"panel {BANDS[j]} looks empty"


def test_every_nebula_has_its_figure(executed: dict) -> None:
    for name, found in executed["summary"].items():
        path = Path(found["figure"])
        assert path.exists() and path.stat().st_size > 10_000, name
        assert path.parent.name == "notebooks" and path.parent.parent.name == "var"
        if name != "NGC 5189":                        # outside the VST survey: CMD only
            assert found["image_panels"] == 0 and not found["cutouts"]
