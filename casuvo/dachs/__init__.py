# SPDX-License-Identifier: BSD-3-Clause
"""casuvo's DaCHS layer: the only package of casuvo that imports ``gavo``.

:mod:`casuvo.dachs.instance` drives the ``dachs`` command line for the
project-local instance (it does not import ``gavo`` itself, so it runs from
any environment); :mod:`casuvo.dachs.server` starts the DaCHS server with
:mod:`casuvo.dachs.errors` applied; :mod:`casuvo.dachs.rdschema` reads table
definitions from resource descriptors.
"""
