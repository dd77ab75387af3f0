# SPDX-License-Identifier: BSD-3-Clause
"""A survey pipeline's configuration: the pipeline's part of the survey's registry entry.

The survey registry (:mod:`casuvo.surveys.registry`) reads
``pipelines/<survey>/config.toml``; :func:`pipeline_config` takes from its entry
what the imaging pipeline needs — who the survey is (``[survey]``), detection
(``[detection]``), astrometric/photometric reference (``[reference]``) and QC
limits (``[qc]``) — as one typed object that goes to the Dask workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from casuvo.imaging.detect import DetectionParams
from casuvo.imaging.qc import Thresholds
from casuvo.surveys.instruments import Instrument
from casuvo.surveys.registry import Survey, load_survey

__all__ = ["PipelineConfig", "load_config", "pipeline_config"]


@dataclass(frozen=True)
class PipelineConfig:
    survey: str
    name: str
    instrument: str
    prog_id: str
    stack_jitters: bool
    obstech: str
    detection: DetectionParams
    g_max: float
    search_arcsec: float
    thresholds: Thresholds
    source: Path
    background_mesh_arcsec: float | None = None
    """Background cell; None for the default, 0 for one level per image."""

    def background_mesh(self, inst: Instrument) -> int | None:
        """The background cell in pixels of ``inst`` (see :func:`subtract_sky`)."""
        if self.background_mesh_arcsec is None:
            return None
        return int(round(self.background_mesh_arcsec / inst.pixel_scale))

    def as_params(self) -> dict:
        """The parameters recorded with every product in the ledger."""
        return {"survey": self.survey, "stack_jitters": self.stack_jitters,
                "threshold": self.detection.threshold, "min_area": self.detection.min_area,
                "rcore_arcsec": self.detection.rcore_arcsec,
                "deblend_cont": self.detection.deblend_cont, "g_max": self.g_max,
                "search_arcsec": self.search_arcsec,
                "background_mesh_arcsec": self.background_mesh_arcsec}


def pipeline_config(entry: Survey) -> PipelineConfig:
    """The pipeline configuration of a survey's registry entry; errors name its file and key."""
    path = entry.source
    try:
        raw = entry.config
        survey, det, ref, qc = raw["survey"], raw["detection"], raw["reference"], raw["qc"]
        return PipelineConfig(
            survey=entry.key, name=entry.name, instrument=entry.camera,
            prog_id=entry.prog_id, stack_jitters=bool(survey["stack_jitters"]),
            obstech=survey["obstech"],
            detection=DetectionParams(float(det["threshold"]), int(det["min_area"]),
                                      float(det["rcore_arcsec"]),
                                      float(det.get("deblend_cont",
                                                    DetectionParams.deblend_cont))),
            g_max=float(ref["g_max"]), search_arcsec=float(ref["search_arcsec"]),
            thresholds=Thresholds(
                float(qc["max_seeing_arcsec"]), float(qc["max_ellipticity"]),
                float(qc["max_astrometric_rms_arcsec"]), float(qc["max_zp_error"]),
                {k: float(v) for k, v in qc.get("min_depth", {}).items()}),
            source=path,
            background_mesh_arcsec=(float(det["background_mesh_arcsec"])
                                    if "background_mesh_arcsec" in det else None))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: bad pipeline configuration ({exc!r})") from exc


def load_config(path: Path) -> PipelineConfig:
    """Read a survey's config file (through the registry) and take its pipeline part.

    Errors (:class:`casuvo.surveys.registry.RegistryError` is a ValueError) name
    the file and the key.
    """
    return pipeline_config(load_survey(path))
