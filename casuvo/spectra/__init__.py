# SPDX-License-Identifier: BSD-3-Clause
"""Spectra (layer beside imaging): templates, radial velocities and the survey formats.

Worker-safe: numpy, scipy and astropy only (no database, DaCHS or web
client), and written for both environments (numpy < 2 with astropy 5 in the
service environment, numpy 2 in the compute one) because the services read
spectra with :func:`casuvo.spectra.read.read_spectrum` too.

- :mod:`~casuvo.spectra.spectrum`: the :class:`Spectrum` every reader returns;
- :mod:`~casuvo.spectra.templates`: synthetic stellar templates (continuum and a
  real line list, vacuum Å) on a Teff/log g/[Fe/H] grid, and the night-sky model;
- :mod:`~casuvo.spectra.rv`: radial velocities by cross-correlation, their errors,
  heliocentric corrections;
- :mod:`~casuvo.spectra.ges`: Gaia-ESO manyspec and singlespec files;
- :mod:`~casuvo.spectra.read`: one reader for every per-object product.
"""
