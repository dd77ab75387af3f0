<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="weave" resdir="weave">
  <meta name="description">
    The WEAVE-like demo survey: low and high resolution spectra (blue and red arms) of stars in the NGC 6791 field, in WEAVE's L1 formats (single, stack and per-object files).  The spectra are the products of casuvo's weave pipeline
    (pipelines/weave): sky subtracted, flux calibrated, stacked per observing
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
  <FEED source="common/spectra#spectroscopicArchive" survey="weave" surveyName="WEAVE"
    instrument="WEAVE" facility="WHT" fluxUnit="1e-17erg.s**-1.cm**-2.Angstrom**-1"
    fluxCalib="ABSOLUTE" fibre="0.000361" testRA="290.22" testDec="37.77"/>
</resource>
