# SPDX-License-Identifier: BSD-3-Clause
"""Imaging reduction steps as plain functions on arrays and headers (the domain layer).

These run on Dask workers in the compute environment: they import numpy,
astropy, sep and reproject, never the database, DaCHS or the client.  The
survey pipelines in ``pipelines/`` compose them; :mod:`casuvo.pipeline` runs
the composition.
"""
