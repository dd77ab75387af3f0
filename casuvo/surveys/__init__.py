# SPDX-License-Identifier: BSD-3-Clause
"""What casuvo knows about surveys (layer: surveys, the domain floor).

Owns the survey registry (one typed description per survey, read from
``pipelines/<survey>/config.toml``), the instruments (camera geometry, filters)
and the Gaia-to-survey-band photometric relations.  Pure Python + numpy +
astropy: it imports nothing of casuvo but :mod:`casuvo.config`, so every other
layer, including code on Dask workers, may use it.
"""
