# SPDX-License-Identifier: BSD-3-Clause
"""The notebooks under notebooks/ run, top to bottom, against the running stack.

Each is executed with nbclient in a kernel on this very interpreter (the
service environment), through a kernelspec written to a private
``JUPYTER_PATH``: whatever kernels the machine has installed play no part.
The checks are on what the notebook prints and the files it writes.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from casuvo.config import Settings
from tests.conftest import MEMBER

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "casuvo-service"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ``sys.executable``, visible only to this test."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "casuvo (service environment)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the notebooks' HTTP clients (pyvo, requests) log in as the member who sees every
    # product, from a netrc file as a user's would: the cells compare with all products
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine localhost login {MEMBER[0]} password {MEMBER[1]}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    return KERNEL


def _run(path: Path, kernel_name: str) -> tuple[nbformat.NotebookNode, str, float]:
    """Execute a copy of the notebook; (executed notebook, all its stdout, seconds)."""
    nb = nbformat.read(path, as_version=4)
    stored = copy.deepcopy(nb)
    # one extra cell, in the copy only: which interpreter the kernel ran
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('kernel:', sys.executable)"))
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=120,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - start
    # the notebook is stored without outputs (and stays so: we ran a copy)
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.output_type == "stream")
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors
    return nb, text, elapsed


def test_cutouts_notebook(kernel_name: str, settings: Settings) -> None:
    figure = settings.var / "notebooks" / "cutouts.png"
    before = figure.stat().st_mtime if figure.exists() else 0.0
    _, text, elapsed = _run(NOTEBOOKS / "cutouts.ipynb", kernel_name)
    print(f"cutouts.ipynb ran in {elapsed:.1f} s")
    assert f"kernel: {sys.executable}\n" in text
    assert f"server: {settings.server_url}/\n" in text
    n_images = int(re.search(r"^(\d+) images contain", text, re.M).group(1))
    assert n_images >= 12
    assert "cutouts: 12\n" in text
    assert "axes with a cutout: 12\n" in text
    assert f"figure: {figure}\n" in text
    # the figure is new, and each of its 3 × 4 panels holds an image, not a blank
    assert figure.stat().st_mtime > before
    with Image.open(figure) as img:
        assert img.format == "PNG"
        grey = np.asarray(img.convert("L"), dtype=float)
    h, w = grey.shape
    assert (w, h) == (800, 640)       # figsize 10 × 8 in at 80 dpi
    top = int(h * 0.07)               # below the title
    for i in range(3):
        for j in range(4):
            # the middle of the panel: image pixels, never frame, ticks or title
            y0, x0 = top + i * (h - top) // 3, j * w // 4
            dy, dx = (h - top) // 3, w // 4
            middle = grey[y0 + dy // 3: y0 + 2 * dy // 3, x0 + dx // 3: x0 + 2 * dx // 3]
            assert middle.std() > 5, f"panel {i},{j} looks empty"


def test_spectra_notebook(kernel_name: str, settings: Settings, gaia_catalogue) -> None:
    """SSA → SDM plot → DataLink to the Gaia source and to the VISTA images at the star."""
    import psycopg

    figure = settings.var / "notebooks" / "spectrum.png"
    before = figure.stat().st_mtime if figure.exists() else 0.0
    _, text, elapsed = _run(NOTEBOOKS / "spectra.ipynb", kernel_name)
    print(f"spectra.ipynb ran in {elapsed:.1f} s")
    ra, dec = 194.27937, -64.82838
    with psycopg.connect(settings.dsn) as conn:
        # independent of the services: the spectra within SIZE = 4″ (a diameter),
        # their source, the images
        ids = conn.execute(
            "SELECT source_id, count(*) OVER () FROM fourmost.spectra WHERE"
            " spoint(radians(ra), radians(dec)) <@ scircle(spoint(radians(%s), radians(%s)),"
            " radians(2.0 / 3600))", (ra, dec)).fetchall()
        n_images = conn.execute(
            "SELECT count(*) FROM vista.images WHERE coverage @> spoint(radians(%s),"
            " radians(%s))", (ra, dec)).fetchone()[0]
    assert ids and f"spectra found: {ids[0][1]}\n" in text
    source_id = int(re.search(r"^gaia source_id: (\d+)$", text, re.M).group(1))
    assert source_id in {int(i) for i, _ in ids}
    truth = gaia_catalogue[gaia_catalogue["source_id"] == source_id]
    assert f"G = {float(truth['phot_g_mean_mag'][0]):.2f}\n" in text
    assert f"VISTA images at the position: {n_images}\n" in text and n_images >= 1
    assert "the star on the image: True\n" in text
    assert re.search(r"^spectrum: 23201 points, 3700-9500 Angstrom$", text, re.M)
    assert f"figure: {figure}\n" in text and figure.stat().st_mtime > before
    with Image.open(figure) as img:
        assert img.format == "PNG" and img.size == (800, 320)
        grey = np.asarray(img.convert("L"), dtype=float)
    assert grey.std() > 5  # a drawn spectrum, not a blank
