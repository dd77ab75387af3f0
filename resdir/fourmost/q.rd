<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="fourmost" resdir="fourmost">
  <meta name="description">
    The 4MOST-like demo survey: low resolution spectra (blue, green and red arms joined) of stars in the VPHAS+ planetary nebula and VVV disc fields, as 4MOST L1 PHASE3SPECTRUM tables.  The spectra are the products of casuvo's fourmost pipeline
    (pipelines/fourmost): sky subtracted, flux calibrated, stacked per observing
    block and per object, with S/N, radial velocities by cross-correlation
    and QC.  Find observing blocks, fibres and spectra in TAP and ObsCore,
    spectra through SSA 1.1 (Spectral Data Model VOTables); each spectrum
    has DataLink (plot, SODA cutouts, per-OB products, Gaia source, the
    VISTA/VST images at its position).
  </meta>
  <meta name="creationDate">2026-12-03T00:00:00Z</meta>
  <meta name="subject">spectroscopy</meta>
  <meta name="subject">radial-velocity</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Archive</meta>

  <!-- The archive: obs_blocks, targets, spectra (SSA), ob_products, raw,
    ObsCore, SSA, SODA, DataLink (resdir/common/spectra.rd).  The test position
    is in the public field: the VVV disc field's spectra are proprietary
    (pipelines/fourmost/config.toml [access]), and validators ask anonymously. -->
  <FEED source="common/spectra#spectroscopicArchive" survey="fourmost" surveyName="4MOST"
    instrument="4MOST" facility="ESO VISTA" fluxUnit="1e-17erg.s**-1.cm**-2.Angstrom**-1"
    fluxCalib="ABSOLUTE" fibre="0.000403" testRA="203.38" testDec="-65.97"/>
</resource>
