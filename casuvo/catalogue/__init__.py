# SPDX-License-Identifier: BSD-3-Clause
"""Catalogue work (layer: catalogue).

Owns what is done with source catalogues once the pipelines made them: the
band merge of tile catalogues into ``<survey>.sources``, the neighbour tables
against Gaia, HATS exports for LSDB users and the planetary-nebula candidate
ranking.  It runs in the compute environment, often on Dask workers, so it
imports neither ``gavo``, psycopg nor the web client; it may use
:mod:`casuvo.xmatch`, :mod:`casuvo.sky`, :mod:`casuvo.surveys`,
:mod:`casuvo.storage.files` and :mod:`casuvo.config`.
"""
