# SPDX-License-Identifier: BSD-3-Clause
"""Parameter checks and output formats of the spectroscopic services (SSA, SODA).

DaCHS's SSA condDescs accept a POS beyond the pole, a negative or NaN SIZE
and a reversed BAND range and answer them with an empty, "OK" result; SODA's
BAND is not checked against itself either.  These checks raise DaCHS's
ValidationError naming the parameter, which the server turns into the
protocol's error document with HTTP 400 (a DALI VOTable for SSA, SODA's
text/plain for dlget: :mod:`casuvo.dachs.errors`, :mod:`casuvo.dachs.datalinks`).

The SODA ``FORMAT`` of a spectrum is one of DaCHS's SDM serialisations,
``image/png`` (the plot DataLink offers as ``#preview``) or :data:`NATIVE`,
the survey's own product file as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from casuvo.dachs.params import MAX_CONE_RADIUS, check_interval

__all__ = ["FORMATS", "NATIVE", "check_soda", "check_ssa", "format_key", "format_spectrum",
           "size_is_diameter"]

#: SODA FORMAT of the survey's own product file (GES singlespec, WEAVE L1, 4MOST L1)
NATIVE = "application/fits;content=survey-product"

#: SODA FORMAT values of a spectrum (media type -> what it is)
FORMATS: dict[str, str] = {
    "application/x-votable+xml": "Spectral Data Model VOTable, binary encoding",
    "application/x-votable+xml;serialization=tabledata": "SDM VOTable, tabledata encoding",
    "application/fits": "SDM FITS binary table",
    "text/csv": "Comma separated values",
    "text/plain": "Tab separated values",
    "image/png": "Plot of the spectrum (PNG)",
    NATIVE: "The survey's own per-object product file, unchanged",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_POS = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*(?:;\s*ICRS\s*)?$", re.I)


def _error(message: str, name: str) -> Exception:
    from gavo import base

    return base.ValidationError(message, name)


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


#: SSA 1.1 FORMAT values (the keywords and media types DaCHS's SSA core serves)
SSA_FORMATS = frozenset({
    "all", "compliant", "native", "graphic", "votable", "fits", "xml", "metadata",
    "application/x-votable+xml", "application/x-votable+xml;content=spectrum",
    "application/fits", "text/xml", "text/csv", "text/plain", "image/png"})


def size_is_diameter(pars: dict[str, Any]) -> None:
    """Make SSA's SIZE the cone's diameter, as SSA 1.1 (§8.4.1.2) defines it.

    DaCHS 2.7's SSA cone condition (``//pql#coneParameter``) uses SIZE as the
    radius, so pyvo's ``search(pos, diameter=d)`` (which sends SIZE = d) got
    every spectrum within d, twice the cone asked for.  Called before the
    cone condition, with the request's parsed parameters, it halves SIZE in
    place (keeping its type: DaCHS parses the value again).
    """
    value = pars.get("SIZE")
    if isinstance(value, list | tuple):
        pars["SIZE"] = type(value)(_halved(v) for v in value)
    elif value is not None:
        pars["SIZE"] = _halved(value)


def _halved(value: Any) -> Any:
    if isinstance(value, str):
        return repr(float(value) / 2) if value.strip() else value
    return None if value is None else float(value) / 2


def check_ssa(pars: Mapping[str, Any]) -> None:
    """POS (``ra,dec[;ICRS]`` in range), SIZE (0 < SIZE <= the cone limit), BAND, FORMAT.

    DaCHS answers an unknown FORMAT with an empty result; SSA clients then
    cannot tell a typo from a sky without spectra.
    """
    fmt = _first(pars.get("FORMAT"))
    if fmt is not None:
        values = [v.strip().lower().replace(" ", "") for v in str(fmt).split(",")]
        unknown = [v for v in values if v not in SSA_FORMATS]
        if unknown:
            raise _error(f"FORMAT {unknown[0][:40]!r} is not served; use one of"
                         f" {', '.join(sorted(SSA_FORMATS))}", "FORMAT")
    pos = _first(pars.get("POS"))
    if pos is not None:
        match = _POS.match(str(pos))
        if not match:
            raise _error(f"POS must be 'ra,dec' in ICRS degrees, not {str(pos)[:40]!r}", "POS")
        ra, dec = float(match.group(1)), float(match.group(2))
        if not 0 <= ra <= 360:
            raise _error(f"POS right ascension {ra:g} is outside [0, 360] degrees", "POS")
        if not -90 <= dec <= 90:
            raise _error(f"POS declination {dec:g} is outside [-90, 90] degrees", "POS")
    size = _first(pars.get("SIZE"))
    if size is not None:
        try:
            value = float(size)
        except (TypeError, ValueError):
            raise _error(f"SIZE must be a number of degrees, not {str(size)[:40]!r}",
                         "SIZE") from None
        if not (math.isfinite(value) and 0 < value <= MAX_CONE_RADIUS):
            raise _error(f"SIZE must be above 0 and at most {MAX_CONE_RADIUS:g} degrees,"
                         f" not {value:g}", "SIZE")
    band = _first(pars.get("BAND"))
    if band is not None:
        for part in str(band).split(","):
            part = part.split(";")[0].strip()
            if "/" not in part:
                if part and not _is_number(part):
                    raise _error(f"BAND must be wavelengths in metres, not {part[:40]!r}",
                                 "BAND")
                continue
            low, high = (p.strip() for p in part.split("/", 1))
            for bound in (low, high):
                if bound and not _is_number(bound):
                    raise _error(f"BAND bound {bound[:40]!r} is not a number", "BAND")
            if low and high and float(low) > float(high):
                raise _error(f"BAND lower bound {float(low):g} is above its upper bound"
                             f" {float(high):g}", "BAND")


def _is_number(text: str) -> bool:
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


def check_soda(descriptor: Any, args: Mapping[str, Any]) -> None:
    """BAND must be an interval with low <= high that overlaps the spectrum."""
    band = args.get("BAND")
    if band is None:
        return
    check_interval(band, "BAND")
    low, high = (float(v) for v in band)
    start = descriptor.ssaRow.get("ssa_specstart")
    end = descriptor.ssaRow.get("ssa_specend")
    if start is not None and end is not None and (high < start or low > end):
        raise _error(f"BAND {low:g} {high:g} does not overlap the spectrum's range"
                     f" {start:g} {end:g} (metres)", "BAND")


def format_key() -> Any:
    """SODA's FORMAT input key of a spectrum (its values are :data:`FORMATS`)."""
    from gavo import base, rscdef
    from gavo.svcs import InputKey

    return base.makeStruct(
        InputKey, name="FORMAT", type="text", ucd="meta.code.mime",
        utype="ssa:Access.Format", multiplicity="forced-single",
        description="Media type of the output: an SDM serialisation or a PNG plot",
        values=base.makeStruct(rscdef.Values, options=[
            base.makeStruct(rscdef.Option, title=title, content_=mime)
            for mime, title in FORMATS.items()]))


def format_spectrum(descriptor: Any, args: Mapping[str, Any]) -> tuple[str, bytes]:
    """The spectrum in the requested FORMAT (default: the SDM VOTable)."""
    from gavo.protocols import sdm, soda

    mime = args.get("FORMAT") or "application/x-votable+xml"
    if mime not in FORMATS:
        raise _error(f"FORMAT {str(mime)[:60]!r} is not one of {', '.join(FORMATS)}",
                     "FORMAT")
    if mime == NATIVE:
        if args.get("BAND") is not None:
            raise _error("BAND cuts the SDM serialisations, not the survey's own file", "BAND")
        from gavo import base

        path = Path(base.getConfig("inputsDir")) / descriptor.ssaRow["accref"]
        return "application/fits", path.read_bytes()
    if mime == "image/png":
        from casuvo.dachs import spectra

        row = descriptor.ssaRow
        return "image/png", spectra.preview_png(
            row["accref"], f"{row.get('ssa_dstitle') or row['accref']}")
    table = descriptor.data.getPrimaryTable()
    if not table.rows:
        raise soda.EmptyData()
    if mime == "application/fits":
        _target_position_as_point(table)
    return sdm.formatSDMData(descriptor.data, mime)


def _target_position_as_point(table: Any) -> None:
    """Give ``ssa_targetpos`` back the SPoint DaCHS's SDM FITS header writer reads.

    DaCHS 2.7 turns the SDM instance's spoint params into 2-arrays for
    VOTable (``sdm.makeSDMDataForSSARow``), then its FITS serialiser reads
    ``ssa_targetpos`` as an SPoint and fails on the array.
    """
    from gavo.utils import pgsphere

    for param in table.iterParams():
        if param.name == "ssa_targetpos" and isinstance(param.value, list | tuple):
            param.type = "spoint"
            param.set(pgsphere.SPoint.fromDegrees(*param.value))
