# SPDX-License-Identifier: BSD-3-Clause
"""A spectrum's plot for the archive pages: a PNG drawn from the per-object product.

The object search shows each spectrum it finds as an image; the image is
drawn here, on the server, from the product file through
:func:`casuvo.spectra.read.read_spectrum` (the one reader of all three
survey formats, which turns inverse variance into 1σ), so the plot shows
exactly what SSA and SODA serve.  Plots are kept per file and modification
time: a page reloaded does not redraw them.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

__all__ = ["plot_png"]

#: size of the plot in inches at :data:`DPI`: 640 × 240 pixels
SIZE = (6.4, 2.4)
DPI = 100


@functools.lru_cache(maxsize=256)
def _plot(path: str, mtime_ns: int, title: str) -> bytes:
    """The PNG of ``path`` as of ``mtime_ns`` (the cache key: a rewritten file is redrawn)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from casuvo.spectra.read import read_spectrum

    spectrum = read_spectrum(Path(path))
    wave = np.asarray(spectrum.wave, dtype=float)
    flux = np.asarray(spectrum.flux, dtype=float)
    sigma = np.asarray(spectrum.sigma, dtype=float)
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_axes((0.09, 0.2, 0.89, 0.68))
    good = np.isfinite(flux)
    ax.plot(wave[good], flux[good], lw=0.6, color="#1f4e79", label="flux")
    band = good & np.isfinite(sigma)
    if band.any():
        ax.fill_between(wave[band], (flux - sigma)[band], (flux + sigma)[band],
                        color="#9ecae1", lw=0, label="±1σ")
    if good.any():
        low, high = np.nanpercentile(flux[good], [0.5, 99.5])
        pad = 0.15 * (high - low or abs(high) or 1.0)
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("wavelength [Å]", fontsize=8)
    unit = str(getattr(spectrum, "flux_unit", "") or "")
    ax.set_ylabel(f"flux [{unit}]" if unit else "flux", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def plot_png(path: Path, title: str) -> bytes:
    """The plot of the spectrum in ``path`` as PNG bytes."""
    return _plot(str(path), path.stat().st_mtime_ns, title)
