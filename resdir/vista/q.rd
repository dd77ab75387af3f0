<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="vista" resdir="vista">
  <meta name="description">
    The VISTA Variables in the Via Lactea (VVV)-like demo survey: J, H and Ks images of a Galactic disc field.  The images are the products of
    casuvo's vista pipeline (pipelines/vista): CASU-style stacked pawprints (one
    image per detector) and tiles, astrometrically calibrated against Gaia
    and photometrically calibrated to the survey's Vega system, with
    confidence maps, source catalogues and QC.  Find images by position,
    band and time through SIA 2.0 (or SIA 1.0), ObsCore and TAP; each image
    has DataLink (preview, cutouts, confidence map, catalogue, progenitors,
    processing record) and SODA cutouts of its own detector.
  </meta>
  <meta name="creationDate">2026-11-25T00:00:00Z</meta>
  <meta name="subject">sky-surveys</meta>
  <meta name="subject">infrared-astronomy</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Archive</meta>
  <meta name="facility">ESO VISTA</meta>

  <!-- The resource's title, waveband and instrument, the image archive
    (vista.images, vista.ancillary, ObsCore, SIA, DataLink, SODA, pages)
    and the processing record (vista.processing).  The values are the survey
    registry's (pipelines/vista/config.toml; tests/integration/test_rd.py). -->
  <FEED source="common/images#imageArchive" survey="vista" surveyName="VVV"
    instrument="VIRCAM" waveband="Infrared" testRA="194.25" testDec="-64.77"/>
  <FEED source="common/processing#processing" survey="vista" surveyName="VVV"/>

  <!-- The raw frames (vista.raw) in ObsCore with calib_level 0. -->
  <FEED source="common/rawframes#rawFrames" survey="vista" surveyName="VVV"/>

  <!-- The band-merged source catalogue (vista.sources) and its cone search. -->
  <FEED source="common/sources#sources" survey="vista" surveyName="VVV"
    camera="VISTA/VIRCAM" testRA="194.30" testDec="-64.75"/>

  <!-- Its Gaia neighbour table (vista.sources_x_gaia) and vista.required_neighbours. -->
  <FEED source="common/xmatch#gaiaNeighbours" survey="vista" surveyName="VVV"/>

  <!-- Rapid-mode alerts (vista.alerts, with their VOEvents) and their form. -->
  <FEED source="common/alerts#alerts" survey="vista" surveyName="VVV"/>
</resource>
