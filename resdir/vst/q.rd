<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="vst" resdir="vst">
  <meta name="description">
    The VST Photometric H-alpha Survey (VPHAS+)-like demo survey: u, g, r, i and H-alpha images of a planetary nebula field and an open cluster.  The images are the products of
    casuvo's vst pipeline (pipelines/vst): CASU-style stacked pawprints (one
    image per detector) and tiles, astrometrically calibrated against Gaia
    and photometrically calibrated to the survey's Vega system, with
    confidence maps, source catalogues and QC.  Find images by position,
    band and time through SIA 2.0 (or SIA 1.0), ObsCore and TAP; each image
    has DataLink (preview, cutouts, confidence map, catalogue, progenitors,
    processing record) and SODA cutouts of its own detector.
  </meta>
  <meta name="creationDate">2026-11-25T00:00:00Z</meta>
  <meta name="subject">sky-surveys</meta>
  <meta name="subject">optical-astronomy</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Archive</meta>
  <meta name="facility">ESO VST</meta>

  <!-- The resource's title, waveband and instrument, the image archive
    (vst.images, vst.ancillary, ObsCore, SIA, DataLink, SODA, pages)
    and the processing record (vst.processing).  The values are the survey
    registry's (pipelines/vst/config.toml; tests/integration/test_rd.py). -->
  <FEED source="common/images#imageArchive" survey="vst" surveyName="VPHAS+"
    instrument="OMEGACAM" waveband="Optical" testRA="203.3875" testDec="-65.9741"/>
  <FEED source="common/processing#processing" survey="vst" surveyName="VPHAS+"/>

  <!-- The raw frames (vst.raw) in ObsCore with calib_level 0. -->
  <FEED source="common/rawframes#rawFrames" survey="vst" surveyName="VPHAS+"/>

  <!-- The band-merged source catalogue (vst.sources) and its cone search. -->
  <FEED source="common/sources#sources" survey="vst" surveyName="VPHAS+"
    camera="VST/OmegaCAM" testRA="203.35" testDec="-65.95"/>

  <!-- Its Gaia neighbour table (vst.sources_x_gaia) and vst.required_neighbours. -->
  <FEED source="common/xmatch#gaiaNeighbours" survey="vst" surveyName="VPHAS+"/>

  <!-- Rapid-mode alerts (vst.alerts, with their VOEvents) and their form. -->
  <FEED source="common/alerts#alerts" survey="vst" surveyName="VPHAS+"/>
</resource>
