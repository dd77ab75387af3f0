# SPDX-License-Identifier: BSD-3-Clause
"""Sky geometry (layer: sky).

Owns HEALPix (the one wrapper of cdshealpix), footprints from WCS (the one
place a footprint polygon is computed) and the psycopg adapters of the pgSphere
types (``spoint``, ``scircle``, ``spoly``; DESIGN decision 6).  Imports only
:mod:`casuvo.surveys` and :mod:`casuvo.config`; worker code may import
:mod:`casuvo.sky.healpix` and :mod:`casuvo.sky.footprint`, which need no database.
"""
