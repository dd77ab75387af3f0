# SPDX-License-Identifier: BSD-3-Clause
"""What the image archive publishes about each pipeline product: one record per image.

A CASU stacked pawprint is a multi-extension file with one image per
detector; a tile is a single image.  The archive (``vista.images``,
``vst.images``, ObsCore, SIA) lists *images*, so every image extension gets
its own record: the extension header (WCS, zero point, seeing, depth) with the
primary header's observation keywords, plus what the archive adds — file
names, the processing run from the ledger, a release date, and a PNG preview.

This module reads files and the ledger only; the DaCHS resource descriptors
(``resdir/common/images.rd``) turn these records into table rows.  It works in
both Python environments (astropy 5.3 and 8).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits

from casuvo.sky.footprint import celestial_images, enclosing_outline, footprint, image_wcs
from casuvo.storage.files import atomic_path

if TYPE_CHECKING:
    from casuvo.surveys.access import AccessPolicy
    from casuvo.surveys.registry import Survey

__all__ = ["IMAGE_PATTERNS", "ImageFile", "ancillary_records", "image_files", "image_records",
           "ledger_release_overrides", "ledger_runs", "public_image_files", "release_date",
           "write_preview"]

log = logging.getLogger(__name__)

#: science image products published per survey: stacked pawprints and tiles
IMAGE_PATTERNS = ("*_st.fit", "*_st_tl.fit")

#: ESO's standard proprietary period; products become public a year after the night
PROPRIETARY_DAYS = 365

#: the primary-header keywords copied into every image record
PRIMARY_KEYS = ("TELESCOP", "INSTRUME", "FILTER", "OBJECT", "MJD-OBS", "MJD-END", "DATE-OBS",
                "TEXPTIME", "PROG_ID", "NCOMBINE", "OBSTECH", "PRODCATG", "OBSTATUS",
                "QCSTATUS", "QCFLAGS", "AMSTART", "ASSON1", "OBID1")

PREVIEW_SIZE = 256


@dataclass(frozen=True)
class ImageFile:
    """A science product file and its companions (confidence map, catalogue)."""

    path: Path
    conf: Path
    catalogue: Path

    @property
    def is_tile(self) -> bool:
        return self.path.name.endswith("_st_tl.fit")


def image_files(survey_dir: Path) -> list[ImageFile]:
    """Science image products of one survey (``products/<survey>/<night>/``), sorted.

    Only finished products count: a product is finished when its completion
    marker exists (the pipeline writes it last), so a running pipeline's files
    are never published half-made.
    """
    files = []
    for pattern in IMAGE_PATTERNS:
        for path in survey_dir.glob(f"2*/{pattern}"):
            if not path.with_name(path.name + ".done.json").exists():
                continue
            stem = path.name[: -len(".fit")]
            files.append(ImageFile(path, path.with_name(stem + "_conf.fit"),
                                   path.with_name(stem + "_cat.fits")))
    return sorted(files, key=lambda f: f.path.name)


def public_image_files(survey_dir: Path, policy: AccessPolicy, today: date | None = None,
                       releases: dict[str, str] | None = None) -> list[ImageFile]:
    """The finished science images of a survey that are public on ``today``.

    What the archive shows everyone without asking who it is — the MOCs and
    HiPS — is made of these only, by the same rule that sets the products'
    ``release_date`` (the survey's access policy: night, field, embargoes).
    """
    today = today or date.today()
    return [f for f in image_files(survey_dir)
            if _release(policy, f.path.parent.name,
                        str(fits.getheader(f.path, 0).get("OBJECT", "")).strip(),
                        f.path.name, releases) <= today]


def release_date(night: str, proprietary_days: int = PROPRIETARY_DAYS) -> date:
    """The date a product of ``night`` (YYYYMMDD) becomes public by ESO's default rule
    (a survey's own rules: :meth:`casuvo.surveys.access.AccessPolicy.release`)."""
    return date(int(night[:4]), int(night[4:6]), int(night[6:8])) + timedelta(
        days=proprietary_days)


def write_preview(data: np.ndarray, path: Path, size: int = PREVIEW_SIZE) -> None:
    """A PNG quick look: block-averaged to at most ``size`` pixels, arcsinh-stretched.

    The stretch uses robust percentiles of the finite pixels so that a few
    saturated stars do not wash out the sky; north is up as in the FITS file
    (row 0 at the bottom).
    """
    from PIL import Image

    img = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0)
    factor = max(1, int(np.ceil(max(img.shape) / size)))
    ny, nx = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    img = img[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3))
    lo, hi = np.percentile(img, [5.0, 99.7])
    scaled = np.arcsinh(np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) * 10) / np.arcsinh(10)
    pixels = (255 * scaled[::-1]).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels, mode="L").save(tmp, format="PNG")


def _coords(ra: float, dec: float) -> str:
    """Sexagesimal ``hh:mm:ss.ss ±dd:mm:ss.s``, as the CASU archive lists positions."""
    c = SkyCoord(ra, dec, unit="deg")
    return (c.ra.to_string(unit="hourangle", sep=":", precision=2, pad=True) + " "
            + c.dec.to_string(sep=":", precision=1, alwayssign=True, pad=True))


def image_records(products_dir: Path, survey: Survey,
                  runs: dict[str, str] | None = None,
                  releases: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """One record per image extension of every finished product of ``survey``.

    ``products_dir`` is ``var/data/products`` (reachable from the DaCHS inputs
    tree as ``products/``), holding the survey's products under its key; the
    survey name and camera come from its registry entry; ``runs`` maps product
    file names to the ledger's processing run.  Keys in upper case are FITS keywords (the WCS for
    DaCHS's ``//siap#computePGS``); lower-case keys are the archive's own, among
    them ``footprint``, the image's four-corner polygon (N×2 ra, dec; the table's
    ``coverage`` and ObsCore ``s_region``) from :func:`casuvo.sky.footprint.footprint`.
    ``releases`` maps product file names to a run's release date
    (:func:`ledger_release_overrides`), which wins over the survey's rules.
    """
    runs = runs or {}
    name, inst, policy = survey.name, survey.instrument, survey.access
    for product in image_files(products_dir / survey.key):
        rel = product.path.relative_to(products_dir.parent).as_posix()
        night = product.path.parent.name
        with fits.open(product.path, memmap=True) as hdul:
            primary = hdul[0].header
            for extnum, hdu in enumerate(hdul[1:], start=1):
                h = hdu.header
                record: dict[str, Any] = {
                    k: v for k, v in h.items()
                    if k and k not in ("COMMENT", "HISTORY", "CHECKSUM", "DATASUM")}
                for key in PRIMARY_KEYS:
                    if key in primary:
                        record.setdefault(key, primary[key])
                ny, nx = hdu.data.shape
                preview = product.path.parent / "previews" / (
                    f"{product.path.name[:-4]}_{extnum}.png")
                if (not preview.exists()
                        or preview.stat().st_mtime < product.path.stat().st_mtime):
                    write_preview(hdu.data, preview)
                centre = image_wcs(h).pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
                filt = inst.filter(str(primary["FILTER"]).strip())
                pixscale = inst.pixel_scale
                record.update(
                    accref=f"{rel}/{extnum}", path=rel, fsize=product.path.stat().st_size,
                    preview=preview.relative_to(products_dir.parent).as_posix(),
                    filename=product.path.name, extnum=extnum, extname=h.get("EXTNAME", ""),
                    imagetype="tile" if product.is_tile else "pawprint",
                    confname=product.conf.name, catname=product.catalogue.name,
                    coords=_coords(float(centre[0]), float(centre[1])),
                    footprint=np.column_stack(footprint(h)),
                    filtername=filt.name, surveyname=name, object=str(primary["OBJECT"]),
                    instrument=str(primary["INSTRUME"]).strip(),
                    facility=str(primary["TELESCOP"]).strip(),
                    nightobs=int(night), mjdobs=float(primary["MJD-OBS"]),
                    mjdend=float(primary["MJD-END"]),
                    totexptime=float(primary["TEXPTIME"]), exptime=float(h.get(
                        "EXPTIME", primary.get("EXPTIME", np.nan))),
                    obsfwhm=float(h.get("PSF_FWHM", float(h.get("SEEING", np.nan)) * pixscale)),
                    ellipticity=float(h.get("ELLIPTIC", np.nan)),
                    skylevel=float(h.get("SKYLEVEL", np.nan)),
                    skynoise=float(h.get("SKYNOISE", np.nan)),
                    magzpt=float(h.get("MAGZPT", np.nan)), magzrr=float(h.get("MAGZRR", np.nan)),
                    abmaglim=float(h.get("ABMAGLIM", np.nan)),
                    astrms=float(h.get("STDCRMS", np.nan)),
                    obstatus=str(primary.get("OBSTATUS", "")).strip(),
                    qcstatus=str(h.get("QCSTATUS", primary.get("QCSTATUS", ""))).strip(),
                    run_id=runs.get(product.path.name),
                    release=_release(policy, night, str(primary["OBJECT"]).strip(),
                                     product.path.name, releases),
                    owner_group=policy.group,
                    wavelength_nm=filt.wavelength_nm, width_nm=filt.width_nm,
                    ncombine=int(primary.get("NCOMBINE", 1)), nx=nx, ny=ny,
                    calib_level=3 if product.is_tile else 2,
                    title=(f"{name} {primary['OBJECT']} {filt.name} "
                           f"{'tile' if product.is_tile else 'pawprint'} "
                           f"{product.path.name}[{extnum}]"),
                )
                yield record


def ledger_runs(dsn: str, pipeline: str) -> dict[str, str]:
    """{product file name: run id} of the last successful run that made or kept it."""
    import psycopg

    from casuvo.storage import ledger

    with psycopg.connect(dsn, autocommit=True) as conn:
        return ledger.product_runs(conn, pipeline)


def _release(policy: AccessPolicy, night: str, field: str, name: str,
             releases: dict[str, str] | None) -> date:
    """A product's release: its run's ``--release-date`` if one was given, else the rules."""
    given = (releases or {}).get(name)
    return policy.release(night, field, override=date.fromisoformat(given) if given else None)


def ledger_release_overrides(dsn: str, pipeline: str) -> dict[str, str]:
    """{product file name: release date} given by pipeline runs (``--release-date``)."""
    import psycopg

    from casuvo.storage import ledger

    with psycopg.connect(dsn, autocommit=True) as conn:
        return ledger.product_release_overrides(conn, pipeline)


def ancillary_records(products_dir: Path, survey: Survey,
                      releases: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """One record per confidence map and catalogue of every finished image product.

    Their footprint is the convex outline of the image's detectors (ObsCore
    s_region), their field the circle enclosing it; their band and times are the
    image's.
    """
    name, inst, policy = survey.name, survey.instrument, survey.access
    for product in image_files(products_dir / survey.key):
        night = product.path.parent.name
        with fits.open(product.path, memmap=True) as hdul:
            primary = hdul[0].header
            outline = enclosing_outline(footprint(hdu.header)
                                        for _, hdu in celestial_images(hdul))
        filt = inst.filter(str(primary["FILTER"]).strip())
        common = dict(
            image=product.path.name, object=str(primary["OBJECT"]),
            filtername=filt.name, instrument=str(primary["INSTRUME"]).strip(),
            facility=str(primary["TELESCOP"]).strip(), ra=outline.ra, dec=outline.dec,
            fov=2 * outline.radius, footprint=outline.hull, mjdobs=float(primary["MJD-OBS"]),
            mjdend=float(primary["MJD-END"]), totexptime=float(primary["TEXPTIME"]),
            em_min=(filt.wavelength_nm - filt.width_nm / 2) * 1e-9,
            em_max=(filt.wavelength_nm + filt.width_nm / 2) * 1e-9,
            calib_level=3 if product.is_tile else 2,
            release=_release(policy, night, str(primary["OBJECT"]).strip(),
                             product.path.name, releases),
            owner_group=policy.group)
        common["release_date"] = common["release"]
        for path, prodcatg, prodtype, subtype, mime, what in (
                (product.conf, "ANCILLARY.WEIGHTMAP", "image", "confidence-map", "image/fits",
                 "confidence map"),
                (product.catalogue, "SCIENCE.SRCTBL", "measurements", "source-catalogue",
                 "application/fits", "source catalogue")):
            if not path.exists():
                continue
            yield dict(common, accref=path.relative_to(products_dir.parent).as_posix(),
                       fsize=path.stat().st_size, mime=mime, filename=path.name,
                       prodcatg=prodcatg, prodtype=prodtype, prodsubtype=subtype,
                       title=f"{name} {primary['OBJECT']} {filt.name} {what} {path.name}")
