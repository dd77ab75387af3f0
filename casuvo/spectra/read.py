# SPDX-License-Identifier: BSD-3-Clause
"""One reader for the per-object spectra of every survey: :func:`read_spectrum`.

It recognises the file by its own structure — a GES singlespec has an
``INPUTINFO`` table after an ``ERROR`` image; a WEAVE L1 file has
``<ARM>_DATA`` extensions (or a ``WVE_`` name); a 4MOST L1 file a
``PHASE3SPECTRUM`` table — and hands it to that survey's reader
(:mod:`casuvo.spectra.ges`, :mod:`casuvo.spectra.weave`,
:mod:`casuvo.spectra.fourmost`, each with ``read_object(path) -> Spectrum``).
Works with numpy < 2 and astropy 5 (service side) and the compute stack alike.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from astropy.io import fits

from casuvo.spectra.spectrum import Spectrum

__all__ = ["SpectrumFormatError", "read_spectrum", "spectrum_format"]


class SpectrumFormatError(ValueError):
    """The file is not a per-object spectrum of a known survey format."""


def spectrum_format(path: Path) -> str:
    """``ges``, ``weave`` or ``fourmost``: the survey format of a per-object product."""
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            names = [h.name.upper() for h in hdul]
            instrume = str(hdul[0].header.get("INSTRUME", "")).upper()
    except (OSError, ValueError) as exc:
        raise SpectrumFormatError(f"{path.name}: not a readable FITS file ({exc})") from exc
    if "PHASE3SPECTRUM" in names:
        return "fourmost"
    if any(n.endswith("_DATA") for n in names):
        return "weave"
    if "INPUTINFO" in names and "ERROR" in names:
        return "ges"   # the singlespec layout (any instrument)
    if path.name.startswith("WVE_") or instrume.startswith("WEAVE"):
        return "weave"
    if instrume == "QMOST":
        return "fourmost"
    raise SpectrumFormatError(f"{path.name}: not a GES, WEAVE or 4MOST per-object spectrum "
                              f"(extensions {', '.join(names)})")


def read_spectrum(path: Path | str) -> Spectrum:
    """The spectrum in a per-object product of any of the three surveys (σ, vacuum Å)."""
    path = Path(path)
    kind = spectrum_format(path)
    if kind == "ges":
        from casuvo.spectra.ges import read_singlespec

        return read_singlespec(path)
    try:
        module = importlib.import_module(f"casuvo.spectra.{kind}")
    except ImportError as exc:
        raise SpectrumFormatError(f"{path.name}: no reader for {kind} products here") from exc
    return module.read_object(path)
