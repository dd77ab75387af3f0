# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo release validate DIR``: is a release directory fit to deliver?

Per file, the SDP rules of its category (:mod:`casuvo.release.rules`); then
the checks across files that ESO's batch validation makes, and casuvo's own:

- **fitsverify** (HEASARC's, from Debian) on every file: each error and
  warning becomes a problem;
- **checksums**: every file is in the manifest with the MD5, SHA-256 and size
  it has now, and every manifest file is present;
- **associations**: ASSON1 names a file of the release that is an
  ANCILLARY.WEIGHTMAP on the same pixel grid (size and WCS per image);
- **provenance closed**: every PROVi is a file of the release, an input the
  manifest lists as held by the archive (raw frames, OB-level spectra), or a
  file of an earlier release; the inputs present agree with the product
  (TELESCOP, INSTRUME, FILTER, and MJD-OBS/MJD-END spanning theirs);
- **positions**: an image's archive position (its ObsCore record when built)
  lies inside its footprint; a spectrum's RA/DEC is the archive's to 0.1″.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path

from astropy.io import fits

from casuvo.release import manifest as mf
from casuvo.release.rules import Problem, check_file, inside_footprint, iter_prov

__all__ = ["fitsverify", "validate_release"]

_FITSVERIFY_LINE = re.compile(r"^\*{3} (Error|Warning): (.*)$")


def fitsverify(paths: list[Path]) -> list[Problem]:
    """fitsverify's errors and warnings, one problem each."""
    exe = shutil.which("fitsverify")
    if exe is None:
        return [Problem("-", None, None, "fitsverify is not installed (Debian package "
                                         "fitsverify)")]
    problems: list[Problem] = []
    if not paths:
        return problems
    done = subprocess.run([exe, "-q", *map(str, paths)], capture_output=True, text=True,
                          check=False)
    failed = [line.split(":", 1)[1].split(",")[0].strip()
              for line in done.stdout.splitlines() if line.startswith("verification FAILED")]
    for name in failed:
        detail = subprocess.run([exe, name], capture_output=True, text=True, check=False)
        hdu = None
        for line in detail.stdout.splitlines():
            match = re.match(r"^=+ HDU (\d+):", line)
            if match:
                hdu = int(match.group(1)) - 1
            found = _FITSVERIFY_LINE.match(line.strip())
            if found:
                problems.append(Problem(Path(name).name, hdu, "fitsverify",
                                        f"{found.group(1).lower()}: {found.group(2).strip()}"))
    return problems


def _images(hdul: fits.HDUList) -> list[fits.Header]:
    return [h.header for h in hdul if h.header.get("NAXIS") == 2]


def _grid_problems(name: str, science: fits.HDUList, weight_name: str,
                   weight: fits.HDUList) -> list[Problem]:
    a, b = _images(science), _images(weight)
    if len(a) != len(b):
        return [Problem(name, 0, "ASSON1", f"{weight_name} has {len(b)} images, "
                                           f"{name} {len(a)}")]
    out = []
    for i, (ha, hb) in enumerate(zip(a, b, strict=True)):
        for key in ("NAXIS1", "NAXIS2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
            va, vb = ha.get(key), hb.get(key)
            if va is None or vb is None or abs(float(va) - float(vb)) > 1e-9:
                out.append(Problem(name, None, "ASSON1",
                                   f"{weight_name} image {i + 1}: {key} {vb} ≠ {va}"))
                break
    return out


def _separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r = math.radians
    s = (math.sin(r(dec1 - dec2) / 2) ** 2
         + math.cos(r(dec1)) * math.cos(r(dec2)) * math.sin(r(ra1 - ra2) / 2) ** 2)
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(s)))) * 3600


def validate_release(directory: Path, *, released: Mapping[str, str] | None = None
                     ) -> list[Problem]:
    """Every problem of a release directory (empty: fit to deliver), sorted."""
    directory = Path(directory)
    try:
        manifest = mf.read_manifest(directory)
    except ValueError as exc:
        return [Problem(directory.name, None, None, str(exc))]
    released = released or {}
    listed: dict[str, dict] = manifest.get("files", {})
    external = manifest.get("external", {})
    paths = sorted(p for p in directory.iterdir()
                   if p.is_file() and re.search(r"\.fits?$", p.name))
    names = {p.name for p in paths}
    problems: list[Problem] = []
    for missing in sorted(set(listed) - names):
        problems.append(Problem(missing, None, None, "in the manifest but not in the release"))
    headers: dict[str, fits.Header] = {}
    for path in paths:
        entry = listed.get(path.name)
        if entry is None:
            problems.append(Problem(path.name, None, None, "not in the manifest"))
        else:
            md5, sha, size = mf.file_hashes(path)
            if (md5, sha, size) != (entry.get("md5"), entry.get("sha256"), entry.get("size")):
                problems.append(Problem(path.name, None, None,
                                        "checksum or size differs from the manifest's"))
        try:
            with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul, \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problems += check_file(str(path), hdul)
                headers[path.name] = hdul[0].header.copy()
        except (OSError, ValueError) as exc:
            problems.append(Problem(path.name, None, None, f"not a readable FITS file: {exc}"))
    problems += fitsverify(paths)
    for name, header in headers.items():
        category = str(header.get("PRODCATG", "")).strip()
        weight = str(header.get("ASSON1", "")).strip()
        if weight:
            if weight not in headers:
                problems.append(Problem(name, 0, "ASSON1",
                                        f"{weight} is not in the release"))
            elif str(headers[weight].get("PRODCATG", "")).strip() != "ANCILLARY.WEIGHTMAP":
                problems.append(Problem(name, 0, "ASSON1",
                                        f"{weight} is not an ANCILLARY.WEIGHTMAP"))
            else:
                with fits.open(directory / name, memmap=True) as a, \
                        fits.open(directory / weight, memmap=True) as b:
                    problems += _grid_problems(name, a, weight, b)
        for key, source in iter_prov(header):
            if source in headers:
                problems += _consistent(name, header, key, source, headers[source], category)
            elif source not in external and source not in released:
                problems.append(Problem(name, 0, key, f"{source} is neither in the release, "
                                        "held by the archive (manifest) nor already released"))
        entry = listed.get(name, {})
        ra, dec = entry.get("ra"), entry.get("dec")
        if ra is None or dec is None:
            continue
        if category in ("SCIENCE.MEFIMAGE", "SCIENCE.IMAGE"):
            with fits.open(directory / name, memmap=True) as hdul, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not inside_footprint(_images(hdul), float(ra), float(dec)):
                    problems.append(Problem(name, None, "RA", f"the archive's position "
                                            f"({ra:.5f}, {dec:.5f}) is outside the footprint"))
        elif category == "SCIENCE.SPECTRUM" and "RA" in header and "DEC" in header:
            sep = _separation_arcsec(float(header["RA"]), float(header["DEC"]), ra, dec)
            if sep > 0.1:
                problems.append(Problem(name, 0, "RA", f"{sep:.2f}″ from the archive's "
                                                       "position"))
    return sorted(problems, key=Problem.sort_key)


def _consistent(name: str, header: fits.Header, key: str, source: str,
                other: fits.Header, category: str) -> list[Problem]:
    out = []
    for k in ("TELESCOP", "INSTRUME") + (("FILTER",) if category != "SCIENCE.CATALOG"
                                         else ()):
        a, b = str(header.get(k, "")).strip(), str(other.get(k, "")).strip()
        if a and b and a != b:
            out.append(Problem(name, 0, k, f"{a!r} but its input {source} ({key}) says {b!r}"))
    for k, sign in (("MJD-OBS", 1), ("MJD-END", -1)):
        a, b = header.get(k), other.get(k)
        if isinstance(a, float) and isinstance(b, float) and sign * (a - b) > 1e-6:
            out.append(Problem(name, 0, k, f"{a} does not span its input {source}'s {b}"))
    return out
