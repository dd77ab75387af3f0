# SPDX-License-Identifier: BSD-3-Clause
"""QC plots (PNG) from the processing ledger: seeing and zero point per night, depth per
filter, and a coverage map of the tiles.  Compute environment (matplotlib):
``casuvo pipeline plots [SURVEY]`` (default: every imaging survey of the registry)
starts :func:`make_plots` as a :class:`casuvo.jobs.PipelinePlotsJob`."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import psycopg
from astropy.io import fits

from casuvo.config import Settings
from casuvo.sky.footprint import footprint
from casuvo.storage import ledger

__all__ = ["make_plots"]


def make_plots(settings: Settings, survey: str) -> list[Path]:
    """Write the QC plots of one survey; returns their paths."""
    out = settings.data_dir / "qc" / survey
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.ensure_products_schema(conn)
        rows = ledger.latest_image_products(conn, survey)
    stacks = [r for r in rows if r[1] == "stack"]
    if not stacks:
        return []
    by_band: dict[str, list] = defaultdict(list)
    for _, _, _, qc, meta in stacks:
        by_band[meta["band"]].append((meta["night"], qc))
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for band, items in sorted(by_band.items()):
        nights = sorted({n for n, _ in items})
        xs = [nights.index(n) + np.random.default_rng(0).uniform(-0.1, 0.1) for n, _ in items]
        axes[0].scatter(xs, [q["seeing_arcsec"] for _, q in items], label=band, s=14)
        axes[1].scatter(xs, [q["magzpt"] for _, q in items], label=band, s=14)
        axes[0].set_xticks(range(len(nights)), nights)
        axes[1].set_xticks(range(len(nights)), nights)
    axes[0].set(ylabel="seeing FWHM (arcsec)", xlabel="night", title=f"{survey}: seeing")
    axes[1].set(ylabel="MAGZPT (mag, 1 s, airmass 1)", xlabel="night",
                title=f"{survey}: zero point")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "seeing_zeropoint_per_night.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    bands = sorted(by_band)
    ax.boxplot([[q["depth"] for _, q in by_band[b]] for b in bands], tick_labels=bands)
    ax.set(ylabel="5σ depth, 2″ aperture (Vega mag)", title=f"{survey}: depth per filter")
    fig.tight_layout()
    paths.append(out / "depth_per_filter.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 6))
    for product, kind, files, _qc, meta in rows:
        if kind != "tile" or not Path(files[0]).exists():
            continue
        with fits.open(files[0]) as hdul:
            corners = np.column_stack(footprint(hdul[1].header))
        ring = np.vstack([corners, corners[:1]])
        ax.plot(ring[:, 0], ring[:, 1], label=f"{product} {meta['band']}")
    ax.invert_xaxis()
    ax.set(xlabel="RA (deg)", ylabel="Dec (deg)", title=f"{survey}: tile coverage")
    ax.legend(fontsize=6)
    fig.tight_layout()
    paths.append(out / "tile_coverage.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths

