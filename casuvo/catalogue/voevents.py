# SPDX-License-Identifier: BSD-3-Clause
"""VOEvent 2.0 packets of rapid-mode candidates, made and validated with voevent-parse.

One packet per candidate (role ``observation``): *Who* is the data centre
(its DaCHS authority), *What* the measurement (class, magnitude and error,
reference magnitude, change, significance, band, exposure, reference
catalogue), *WhereWhen* the position (ICRS, UTC, topocentric) at the
exposure's start, *How* the method, *Why* the class as an inference.  Every
packet is checked against the VOEvent 2.0 schema (shipped with voevent-parse)
before it is written; an invalid one is an error, never a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.time import Time

from casuvo.storage.files import atomic_path

__all__ = ["AlertContext", "make_voevent", "write_voevents"]

#: Position uncertainty given with each candidate (deg): the astrometric QC limit.
POSITION_ERROR_DEG = 0.2 / 3600.0


@dataclass(frozen=True)
class AlertContext:
    """Who publishes the alerts and under which stream."""

    authority: str
    """The data centre's IVOA authority (DaCHS's ``[ivoa] authority``)."""
    survey: str
    facility: str
    """Telescope and instrument, e.g. ``VISTA/VIRCAM``."""
    contact: str = "casuvo operators"

    @property
    def stream(self) -> str:
        return f"{self.authority}/{self.survey}/alerts"

    def ivorn(self, raw: object, k: int) -> str:
        """The IVORN of candidate ``k`` of the exposure ``raw``."""
        return f"ivo://{self.stream}#{self.event_id(raw, k)}"

    @staticmethod
    def event_id(raw: object, k: int) -> str:
        return f"{Path(raw.path).stem}-{k:03d}"


def _value(x: float, digits: int = 4) -> str:
    return "NaN" if not math.isfinite(x) else f"{x:.{digits}f}"


def make_voevent(row: object, context: AlertContext, raw: object, k: int) -> object:
    """The packet of candidate ``row`` (a row of :func:`casuvo.catalogue.alerts.compare`)."""
    import voeventparse as vp

    event = vp.Voevent(stream=context.stream, stream_id=context.event_id(raw, k),
                       role=vp.definitions.roles.observation)
    vp.set_who(event, date=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
               author_ivorn=f"{context.authority}/casuvo")
    vp.set_author(event, title=f"casuvo rapid mode, {context.survey}",
                  contactName=context.contact)
    kind = str(row["kind"])
    params = [
        vp.Param("class", value=kind, dataType="string", ucd="meta.code.class"),
        vp.Param("mag", value=_value(float(row["mag"])), unit="mag", ucd="phot.mag",
                 dataType="float"),
        vp.Param("mag_err", value=_value(float(row["mag_err"])), unit="mag",
                 ucd="stat.error;phot.mag", dataType="float"),
        vp.Param("ref_mag", value=_value(float(row["ref_mag"])), unit="mag",
                 ucd="phot.mag;obs.param", dataType="float"),
        vp.Param("delta_mag", value=_value(float(row["delta_mag"])), unit="mag",
                 ucd="phot.mag;arith.diff", dataType="float"),
        vp.Param("significance", value=_value(float(row["significance"]), 2),
                 ucd="stat.snr", dataType="float"),
        vp.Param("band", value=str(raw.band), dataType="string", ucd="instr.filter"),
        vp.Param("exposure", value=Path(raw.path).name, dataType="string",
                 ucd="meta.id;obs"),
    ]
    event.What.extend(params)
    obs_time = Time(raw.mjd, format="mjd", scale="utc").to_datetime().replace(tzinfo=UTC)
    vp.add_where_when(event, coords=vp.Position2D(
        ra=round(float(row["ra"]), 7), dec=round(float(row["dec"]), 7),
        err=POSITION_ERROR_DEG, units="deg",
        system=vp.definitions.sky_coord_system.utc_icrs_topo),
        obs_time=obs_time, observatory_location=vp.definitions.observatory_location.geosurface)
    # voevent-parse 1.0.3 (the latest) tests lists with collections.Iterable, gone
    # since Python 3.10: give add_how one string and append the inference ourselves.
    vp.add_how(event, descriptions=(
        f"{context.facility} exposure {Path(raw.path).name} ({raw.band}), calibrated with "
        "the night's masters and Gaia, compared with the catalogue of the field's latest "
        "earlier tile in the same band (casuvo.catalogue.alerts)"))
    significance = float(row["significance"])
    probability = 1.0 if not math.isfinite(significance) else float(
        np.clip(1.0 - math.erfc(abs(significance) / math.sqrt(2.0)), 0.0, 1.0))
    vp.add_why(event, importance=round(probability, 3))
    event.Why.append(vp.Inference(probability=round(probability, 3), relation="identified",
                                  concept=kind))
    return event


def write_voevents(candidates: object, context: AlertContext, raw: object,
                   out_dir: Path) -> list[Path]:
    """One validated packet per candidate, ``out_dir/<exposure>-<k>.xml``; their paths."""
    import voeventparse as vp

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, row in enumerate(candidates):
        event = make_voevent(row, context, raw, k)
        if not vp.valid_as_v2_0(event):
            raise ValueError(f"{context.ivorn(raw, k)}: not a valid VOEvent 2.0 packet")
        path = out_dir / f"{context.event_id(raw, k)}.xml"
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            vp.dump(event, f)
        paths.append(path)
    return paths
