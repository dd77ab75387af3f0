# SPDX-License-Identifier: BSD-3-Clause
"""The demo survey's fields on the sky, the star cluster and the planetary nebulae they hold.

A field is a square of side ``size_deg`` in the gnomonic (tangent-plane)
projection about its centre, so "inside the field" is exact and cheap to test
(:meth:`Field.contains`) and the area is ``size_deg**2`` to better than 1e-4
for one-degree fields.  Field names are slugs: they name the files.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from astropy.coordinates import Angle

__all__ = ["CLUSTERS", "DEMO_FIELDS", "NGC5189", "NGC6791", "PLANETARY_NEBULAE", "Cluster",
           "Field", "PlanetaryNebula", "clusters_in", "field_by_name", "nebulae_in"]


@dataclass(frozen=True)
class Field:
    """A square survey field centred on (ra, dec) (ICRS, degrees)."""

    name: str
    ra: float
    dec: float
    size_deg: float
    description: str

    @property
    def key(self) -> int:
        """A stable number for the field (CRC-32 of its name), for seeds and identifiers.

        Stable across Python versions and runs, unlike ``hash(name)``.
        """
        return zlib.crc32(self.name.encode("utf-8"))

    def to_tangent(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gnomonic standard coordinates (xi, eta) in degrees about the field centre."""
        a = np.radians(np.asarray(ra, dtype=np.float64) - self.ra)
        d = np.radians(np.asarray(dec, dtype=np.float64))
        d0 = np.radians(self.dec)
        cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a)
        xi = np.cos(d) * np.sin(a) / cosc
        eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a)) / cosc
        return np.degrees(xi), np.degrees(eta)

    def from_tangent(self, xi: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ICRS (ra, dec) in degrees of gnomonic standard coordinates in degrees."""
        x = np.radians(np.asarray(xi, dtype=np.float64))
        y = np.radians(np.asarray(eta, dtype=np.float64))
        d0 = np.radians(self.dec)
        den = np.cos(d0) - y * np.sin(d0)
        ra = np.degrees(np.radians(self.ra) + np.arctan2(x, den)) % 360.0
        dec = np.degrees(np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, den)))
        return ra, dec

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Whether positions lie inside the field's square (boolean array)."""
        xi, eta = self.to_tangent(ra, dec)
        half = self.size_deg / 2
        return (np.abs(xi) <= half) & (np.abs(eta) <= half)


@dataclass(frozen=True)
class Cluster:
    """A star cluster the simulator adds to any field that contains its centre.

    ``locus`` is the observed (reddened) colour–magnitude sequence from the
    faint main sequence through the turnoff and subgiant branch up the red
    giant branch: (G, BP−RP, weight), the weight being the relative number of
    members on the segment that starts at that vertex.  ``red_clump`` is
    (G, BP−RP, fraction of members).
    """

    name: str
    ra: float
    dec: float
    members: int
    core_radius_arcmin: float
    tidal_radius_arcmin: float
    parallax: float
    pmra: float
    pmdec: float
    pm_dispersion: float
    radial_velocity: float
    rv_dispersion: float
    locus: tuple[tuple[float, float, float], ...]
    red_clump: tuple[float, float, float]


def _hms(text: str) -> float:
    return float(Angle(text).deg)


#: NGC 6791: old (~8 Gyr), metal-rich open cluster at ~4.5 kpc, E(B−V) ~ 0.15.
#: Proper motion after Cantat-Gaudin et al. (2018), parallax 0.22 mas (~4.5 kpc),
#: RV after Tofflemire et al. (2014);
#: King core/tidal radii ~2.3′/23′ (Platais et al. 2011) rounded.  The locus is
#: a by-eye Gaia CMD: turnoff G ~ 17.5 at BP−RP ~ 1.1, red clump G ~ 14.4.
NGC6791 = Cluster(
    name="NGC 6791", ra=290.2208, dec=37.7717, members=3000,
    core_radius_arcmin=2.5, tidal_radius_arcmin=20.0,
    parallax=0.22, pmra=-0.42, pmdec=-2.27, pm_dispersion=0.1,
    radial_velocity=-47.0, rv_dispersion=1.0,
    locus=(
        (21.6, 1.98, 560), (21.0, 1.80, 500), (20.5, 1.64, 440), (20.0, 1.50, 390),
        (19.5, 1.39, 340), (19.0, 1.30, 300), (18.5, 1.22, 260), (18.0, 1.15, 200),
        (17.6, 1.10, 30), (17.45, 1.13, 25), (17.3, 1.25, 20), (17.15, 1.40, 20),
        (17.0, 1.50, 40), (16.5, 1.56, 35), (16.0, 1.61, 45), (15.0, 1.72, 35),
        (14.0, 1.90, 25), (13.0, 2.20, 12), (12.3, 2.60, 0),
    ),
    red_clump=(14.4, 1.52, 0.012),
)

CLUSTERS: tuple[Cluster, ...] = (NGC6791,)


@dataclass(frozen=True)
class PlanetaryNebula:
    """A planetary nebula of the demo sky and its central star, as the truth has them.

    The central star sits at the nebula's centre (``ra``, ``dec``: ICRS at
    J2016.0, the Gaia epoch) and is a Gaia source there (:mod:`casuvo.simulate.gaia`
    adds it to the catalogue of its field with these true values).  ``g`` and
    ``bp_rp`` are the *observed* (reddened) true G and BP−RP, given directly
    because hot central stars lie far off the field-star colour law the
    simulator uses.  ``pos_error_arcsec`` is the 1σ error per coordinate of the
    nebula's position in the planetary-nebula catalogue (HASH/Kerber-like), from
    which :mod:`casuvo.simulate.nebulae` draws the catalogue position.
    """

    name: str
    ra: float
    dec: float
    major_diam_arcsec: float
    minor_diam_arcsec: float
    pa_deg: float
    pos_error_arcsec: float
    g: float
    bp_rp: float
    parallax: float
    pmra: float
    pmdec: float
    radial_velocity: float


#: NGC 5189 (PN G307.2−03.4): the SIMBAD position of its central star (rounded), a hot
#: [WO] star (V ≈ 14.5) at ~1.5 kpc; the shell is rendered 140″ × 90″ at PA 70°
#: (:mod:`casuvo.simulate.skymodel`).  Its centre is ill-defined (the real nebula is
#: quadrupolar), hence the 3″ catalogue error.
NGC5189 = PlanetaryNebula(
    name="NGC 5189", ra=203.3875, dec=-65.9741, major_diam_arcsec=140.0,
    minor_diam_arcsec=90.0, pa_deg=70.0, pos_error_arcsec=3.0,
    g=14.6, bp_rp=-0.4, parallax=1 / 1.5, pmra=-5.0, pmdec=-2.0, radial_velocity=-15.0)

#: The demo sky's planetary nebulae.  Besides NGC 5189, two compact ones in the
#: ges_1528 field (no imaging there, so the sky model need not render them): hot
#: central stars (M_G ≈ 4.5–5) at 2.5 and 1.2 kpc behind E(BP−RP) ≈ 0.5 and 0.35,
#: the reddening the simulator's dust layer gives at b = +4.8° (intrinsic BP−RP ≈ −0.5).
PLANETARY_NEBULAE: tuple[PlanetaryNebula, ...] = (
    NGC5189,
    PlanetaryNebula(
        name="PHR J1529-5055", ra=232.48236, dec=-50.92561, major_diam_arcsec=12.0,
        minor_diam_arcsec=10.0, pa_deg=35.0, pos_error_arcsec=2.0,
        g=17.4, bp_rp=-0.01, parallax=0.40, pmra=-4.0, pmdec=-3.5, radial_velocity=-30.0),
    PlanetaryNebula(
        name="PHR J1526-5023", ra=231.56731, dec=-50.38836, major_diam_arcsec=25.0,
        minor_diam_arcsec=21.0, pa_deg=120.0, pos_error_arcsec=3.0,
        g=16.0, bp_rp=-0.16, parallax=1 / 1.2, pmra=-6.1, pmdec=-2.8, radial_velocity=12.0),
)

DEMO_FIELDS: tuple[Field, ...] = (
    Field("vvv_disc", 194.30, -64.75, 1.0,
          "VVV Galactic disc field (l = 303.5, b = -1.9): crowded and reddened"),
    Field("vphas_pn", 203.3875, -65.9741, 1.0,
          "VPHAS+ Galactic-plane field centred on the planetary nebula NGC 5189"),
    Field("ngc6791", 290.2208, 37.7717, 1.0,
          "The old metal-rich open cluster NGC 6791 (b = +10.9) and its field"),
    Field("ges_1528", _hms("15h28m03.5s"), _hms("-50d42m34s"), 1.0,
          "Gaia-ESO Survey field around 15:28:03.5 -50:42:34 (b = +4.8)"),
)


def field_by_name(name: str) -> Field:
    """The demo field called ``name`` (ValueError listing the known names otherwise)."""
    for field in DEMO_FIELDS:
        if field.name == name:
            return field
    known = ", ".join(f.name for f in DEMO_FIELDS)
    raise ValueError(f"unknown field {name!r}; demo fields are {known}")


def clusters_in(field: Field) -> tuple[Cluster, ...]:
    """The clusters whose centre lies in ``field``."""
    return tuple(c for c in CLUSTERS if bool(field.contains(c.ra, c.dec)))


def nebulae_in(field: Field) -> tuple[PlanetaryNebula, ...]:
    """The planetary nebulae whose central star lies in ``field``."""
    return tuple(p for p in PLANETARY_NEBULAE if bool(field.contains(p.ra, p.dec)))
