# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: the spectroscopic pipelines, and their radial velocities against the truth.

1. Throughput: ``run_spectro_pipeline`` over the demo's raw data of each
   spectroscopic survey (GES, WEAVE, 4MOST), into a scratch products tree, with
   1 and with 2 Dask worker threads: object spectra per CPU second (spectra per
   second per core) and the wall-clock speed-up from 1 to 2 workers.
2. RV accuracy against S/N, from the index tables the 1-worker run wrote and the
   simulator's truth: median |rv − truth|, median stated error and the pull's
   spread per S/N bin, as figures and as a plot (``var/bench/spectro_rv_snr.png``).
3. Baseline, same spectra, same run: the plain cross-correlation anyone would
   write first — the per-object product resampled to ln λ, divided by a running
   median continuum, ``scipy.signal.correlate`` against the one template the
   pipeline found best (told it, so it has no template search), parabolic peak.
   Ratios: its median |rv − truth| over casuvo's (accuracy), and casuvo's time per
   spectrum (template grid search, CCF and χ² refinement) over the baseline's.

Run in the compute environment: ``var/venv-compute/bin/python bench/spectro.py``;
``--json PATH`` writes the figures for ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.ndimage import median_filter
from scipy.signal import correlate

from casuvo.config import Settings
from casuvo.pipeline.spectro import run_spectro_pipeline
from casuvo.spectra import rv as rvmod
from casuvo.spectra.read import read_spectrum
from casuvo.spectra.templates import C_KMS, line_absorption
from casuvo.surveys.registry import load_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import figure, write_json  # bench/report.py: standard library only

SURVEYS = ("ges", "weave", "fourmost")
SNR_BINS = (5.0, 10.0, 20.0, 40.0, 80.0, np.inf)


def _scratch(data_dir: Path, root: Path) -> Path:
    """A data tree whose raw and truth are the demo's (linked) and whose products are new."""
    for part in ("raw", "truth"):
        (root / part).mkdir(parents=True, exist_ok=True)
        for s in SURVEYS:
            (root / part / s).symlink_to(data_dir / part / s)
    return root


def throughput(data_dir: Path, workers: int) -> tuple[Path, dict[str, dict[str, float]]]:
    """Run every spectroscopic pipeline afresh with ``workers`` threads."""
    root = _scratch(data_dir, Path(tempfile.mkdtemp(prefix=f"spectro-bench-{workers}-")))
    registry = load_registry()
    out = {}
    for s in SURVEYS:
        rvmod.template_set.cache_clear()     # every run prepares its templates
        c0, t0 = time.process_time(), time.perf_counter()
        summary = run_spectro_pipeline(registry[s], root, None, workers=workers,
                                       progress=False)
        out[s] = {"spectra": summary.n_spectra, "cpu_s": time.process_time() - c0,
                  "wall_s": time.perf_counter() - t0, "failed": summary.failed}
    return root, out


def _truth(root: Path, survey: str) -> dict[str, float]:
    t = fits.getdata(root / "truth" / survey / "targets_truth.fits")
    return {str(r["target_name"]): float(r["rv_true"]) for r in t}


def rv_table(root: Path) -> dict[str, np.ndarray]:
    """Per object spectrum: S/N, rv − truth, stated error, file, template, R, survey."""
    cols: dict[str, list] = {k: [] for k in ("snr", "dv", "err", "file", "tmpl", "res",
                                               "survey", "truth")}
    for s in SURVEYS:
        truth = _truth(root, s)
        sp = fits.getdata(root / "products" / s / "index" / "spectra.fits")
        for r in sp:
            if not np.isfinite(r["rv"]):
                continue
            t = truth[str(r["target_name"])]
            for k, v in (("snr", r["snr"]), ("dv", r["rv"] - t), ("err", r["rv_error"]),
                         ("file", str(r["file"])), ("tmpl", str(r["rv_template"])),
                         ("res", r["resolving_power"]), ("survey", s), ("truth", t)):
                cols[k].append(v)
    return {k: np.array(v) for k, v in cols.items()}


def by_snr(t: dict[str, np.ndarray]) -> list[dict[str, float]]:
    rows = []
    for lo, hi in itertools.pairwise(SNR_BINS):
        m = (t["snr"] >= lo) & (t["snr"] < hi)
        if not m.any():
            continue
        rows.append({"snr_lo": lo, "snr_hi": hi, "n": int(m.sum()),
                     "median_abs_dv": float(np.median(np.abs(t["dv"][m]))),
                     "median_err": float(np.median(t["err"][m])),
                     "pull_std": float(np.std(t["dv"][m] / t["err"][m])),
                     "mean_dv": float(np.mean(t["dv"][m]))})
    return rows


def plot(t: dict[str, np.ndarray], rows: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s, marker in zip(SURVEYS, "os^", strict=True):
        m = t["survey"] == s
        ax.scatter(t["snr"][m], np.abs(t["dv"][m]), s=10, marker=marker, alpha=0.5,
                   label=f"{s} |rv − truth|")
    mid = [np.sqrt(r["snr_lo"] * min(r["snr_hi"], 2 * r["snr_lo"])) for r in rows]
    ax.plot(mid, [r["median_abs_dv"] for r in rows], "k-", lw=2, label="median |rv − truth|")
    ax.plot(mid, [r["median_err"] for r in rows], "r--", lw=2, label="median stated error")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("S/N per pixel (object spectrum)")
    ax.set_ylabel("km/s")
    ax.set_title("Radial velocity accuracy against S/N (GES, WEAVE, 4MOST demo)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _segment(wave: np.ndarray) -> slice:
    """The longest run of evenly sampled, increasing wavelengths (one arm)."""
    d = np.diff(wave)
    breaks = np.flatnonzero((d <= 0) | (np.abs(d / np.median(d) - 1) > 0.1)) + 1
    edges = [0, *breaks.tolist(), wave.size]
    a, b = max(itertools.pairwise(edges), key=lambda e: e[1] - e[0])
    return slice(a, b)


def plain_ccf(wave: np.ndarray, flux: np.ndarray, tmpl: str, resolution: float) -> float:
    """The baseline: one template, scipy.signal.correlate, parabolic peak (km/s)."""
    teff, logg, feh = (float(tmpl[1:tmpl.index("g")]), float(tmpl[tmpl.index("g") + 1:
                       tmpl.index("g") + 3]) / 10, float(tmpl[-2:]) / 10 *
                       (-1 if tmpl[-3] == "m" else 1))
    good = np.isfinite(flux)
    dlnw = float(np.median(np.diff(np.log(wave))))
    x = np.arange(np.log(wave[0]), np.log(wave[-1]), dlnw)
    f = np.interp(x, np.log(wave[good]), flux[good])
    cont = median_filter(f, size=301, mode="nearest")
    obs = f / cont - 1.0
    tpl = line_absorption(np.exp(x), teff, logg, feh, resolution) - 1.0
    obs -= obs.mean()
    tpl -= tpl.mean()
    cc = correlate(obs, tpl, mode="full", method="fft")
    lags = np.arange(-x.size + 1, x.size)
    window = np.abs(lags) <= int(np.ceil(np.log1p(rvmod.VMAX / C_KMS) / dlnw))
    k = int(np.flatnonzero(window)[np.argmax(cc[window])])
    frac = 0.5 * (cc[k - 1] - cc[k + 1]) / (cc[k - 1] - 2 * cc[k] + cc[k + 1])
    return float(C_KMS * np.expm1((lags[k] + frac) * dlnw))


def baseline(root: Path, t: dict[str, np.ndarray]) -> dict[str, float]:
    """casuvo's measure_rv and the plain CCF on the same per-object products."""
    ours, plain = [], []
    t_ours = t_plain = 0.0
    for i, rel in enumerate(t["file"]):
        s = read_spectrum(root / rel)
        seg = _segment(s.wave)
        w, f, e = s.wave[seg], s.flux[seg], s.sigma[seg]
        c0 = time.perf_counter()   # templates prepared once per arm, as in the pipeline
        r = rvmod.measure_rv(w, f, e, float(t["res"][i]), None)
        t_ours += time.perf_counter() - c0
        c0 = time.perf_counter()
        v = plain_ccf(w, f, str(t["tmpl"][i]), float(t["res"][i]))
        t_plain += time.perf_counter() - c0
        ours.append(r.rv - t["truth"][i])
        plain.append(v - t["truth"][i])
    ours_a, plain_a = np.abs(np.array(ours)), np.abs(np.array(plain))
    n = len(ours)
    return {"n": n, "casuvo_median_abs_dv": float(np.nanmedian(ours_a)),
            "plain_median_abs_dv": float(np.nanmedian(plain_a)),
            "casuvo_s_per_spectrum": t_ours / n, "plain_s_per_spectrum": t_plain / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path, default=None,
                        help="RV-vs-S/N plot (default var/bench/spectro_rv_snr.png)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    data_dir = settings.data_dir
    png = args.plot or settings.home / "var" / "bench" / "spectro_rv_snr.png"

    # warm-up outside the timings: astropy's Earth orientation tables (helio correction)
    from casuvo.spectra.rv import helio_correction

    helio_correction(10.0, -20.0, 60400.0, (-70.4, -24.6, 2635.0))
    root1, one = throughput(data_dir, 1)
    root2, two = throughput(data_dir, 2)
    shutil.rmtree(root2)
    n = sum(v["spectra"] for v in one.values())
    cpu1 = sum(v["cpu_s"] for v in one.values())
    wall1 = sum(v["wall_s"] for v in one.values())
    wall2 = sum(v["wall_s"] for v in two.values())
    for s in SURVEYS:
        print(f"{s:9s} {one[s]['spectra']:4d} spectra  cpu {one[s]['cpu_s']:6.1f} s  "
              f"wall 1 worker {one[s]['wall_s']:6.1f} s, 2 workers {two[s]['wall_s']:6.1f} s")
    rate = n / cpu1
    print(f"throughput {rate:.2f} spectra/s/core (CPU), wall {n / wall1:.2f}/s with 1 worker, "
          f"{n / wall2:.2f}/s with 2 (speed-up {wall1 / wall2:.2f}×)")

    t = rv_table(root1)
    rows = by_snr(t)
    for r in rows:
        print(f"S/N {r['snr_lo']:5.0f}–{r['snr_hi']:<5.0f} n {r['n']:3d}  median |dv| "
              f"{r['median_abs_dv']:.2f} km/s  median error {r['median_err']:.2f}  "
              f"pull σ {r['pull_std']:.2f}  mean dv {r['mean_dv']:+.2f}")
    plot(t, rows, png)
    print(f"plot: {png}")
    base = baseline(root1, t)
    shutil.rmtree(root1)
    acc = base["plain_median_abs_dv"] / base["casuvo_median_abs_dv"]
    cost = base["casuvo_s_per_spectrum"] / base["plain_s_per_spectrum"]
    print(f"baseline on {base['n']} object spectra (one arm each): median |dv| casuvo "
          f"{base['casuvo_median_abs_dv']:.2f} km/s, plain scipy CCF "
          f"{base['plain_median_abs_dv']:.2f} km/s ({acc:.2f}× less accurate); time "
          f"{1e3 * base['casuvo_s_per_spectrum']:.1f} ms vs "
          f"{1e3 * base['plain_s_per_spectrum']:.1f} ms per spectrum ({cost:.1f}×)")

    figures = [
        figure("pipeline throughput (CPU)", rate, "spectra/s/core"),
        figure("pipeline wall, 2 workers", n / wall2, "spectra/s",
               baseline="1 worker", baseline_value=n / wall1),
        figure("RV median |rv − truth|", base["casuvo_median_abs_dv"], "km/s",
               baseline="plain scipy.signal.correlate, best template given",
               baseline_value=base["plain_median_abs_dv"], ratio=acc),
        figure("RV time per spectrum", 1e3 * base["casuvo_s_per_spectrum"], "ms",
               baseline="plain scipy.signal.correlate, one template",
               baseline_value=1e3 * base["plain_s_per_spectrum"], ratio=cost),
        *(figure(f"RV median |dv|, S/N {r['snr_lo']:.0f}–{r['snr_hi']:.0f}",
                 r["median_abs_dv"], "km/s", baseline="median stated error",
                 baseline_value=r["median_err"]) for r in rows),
    ]
    if args.json:
        write_json(args.json, "spectro", figures, per_survey={"1": one, "2": two},
                   rv_by_snr=rows, baseline=base, plot=str(png))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
