<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="ges" resdir="ges">
  <meta name="description">
    The Gaia-ESO Survey (GES)-like demo survey: FLAMES/GIRAFFE spectra (HR10, HR21) of stars in the field around 15:28:03.5 -50:42:34, in the survey's own formats (per-pointing manyspec, per-object singlespec files).  The spectra are the products of casuvo's ges pipeline
    (pipelines/ges): sky subtracted, flux calibrated, stacked per observing
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
    ObsCore, SSA, SODA, DataLink (resdir/common/spectra.rd). -->
  <FEED source="common/spectra#spectroscopicArchive" survey="ges" surveyName="Gaia-ESO"
    instrument="FLAMES/GIRAFFE" facility="ESO VLT" fluxUnit="1e-17erg.s**-1.cm**-2.Angstrom**-1"
    fluxCalib="ABSOLUTE" fibre="0.000333" testRA="232.0146" testDec="-50.7094"/>
</resource>
