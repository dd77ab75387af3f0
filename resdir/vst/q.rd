<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="vst" resdir="vst">
  <meta name="title">casuvo VPHAS+ (OMEGACAM) image archive</meta>
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
  <meta name="coverage.waveband">Optical</meta>
  <meta name="facility">ESO VST</meta>
  <meta name="instrument">OMEGACAM</meta>

  <FEED source="common/images#imageArchive" survey="vst" surveyName="VPHAS+"
    instrument="OMEGACAM" testRA="203.3875" testDec="-65.9741"/>

  <table id="processing" onDisk="True" adql="True">
    <meta name="description">The processing record of every VPHAS+ product:
      which pipeline run made it, from which inputs (with SHA-256 checksums),
      with which parameters, its QC and timing (a view of the casuvo
      ledger).  The images' DataLink (#provenance) points here.</meta>
    <meta name="table-rank">60</meta>
    <column name="run_id" type="text" ucd="meta.id;meta.dataset"
      description="Processing run (also in vst.images.run_id)."/>
    <column name="product" type="text" ucd="meta.id;meta.file"
      description="Product file name (images.filename)."/>
    <column name="kind" type="text" ucd="meta.code.class"
      description="masters, exposure, stack or tile."/>
    <column name="status" type="text" ucd="meta.code.status"
      description="ok, failed or resumed (made by an earlier run)."/>
    <column name="files" type="text" ucd="meta.id;meta.file"
      description="Files written (JSON array)."/>
    <column name="inputs" type="text" ucd="meta.id;meta.file"
      description="Input files and their SHA-256 checksums (JSON)."/>
    <column name="params" type="text" ucd="meta.code"
      description="Pipeline parameters (JSON)."/>
    <column name="qc" type="text" ucd="meta.code.qual"
      description="QC measurements and verdict (JSON)."/>
    <column name="message" type="text" ucd="meta.note"
      description="Why a product failed."/>
    <column name="seconds" type="double precision" unit="s"
      ucd="time.duration" description="Processing time."/>
    <column name="code_version" type="text" ucd="meta.version"
      description="casuvo version that made the product."/>
    <column name="finished" type="timestamp" ucd="time.end"
      description="When the product was finished."/>
    <viewStatement>
      CREATE OR REPLACE VIEW \curtable AS (
        SELECT run_id, product, kind, status, array_to_json(files)::text AS files,
          inputs::text AS inputs, params::text AS params, qc::text AS qc, message,
          seconds, code_version, finished::timestamp AS finished
        FROM ledger.products WHERE pipeline = 'vst')
    </viewStatement>
  </table>

  <data id="processingView">
    <make table="processing"/>
  </data>

  <!-- The band-merged source catalogue (vst.sources) and its cone search. -->
  <FEED source="common/sources#sources" survey="vst" instrument="VPHAS+ (VST/OmegaCAM)"
    testRA="203.35" testDec="-65.95"/>

  <!-- Its Gaia neighbour table (vst.sources_x_gaia) and vst.required_neighbours. -->
  <FEED source="common/xmatch#gaiaNeighbours" survey="vst" instrument="VPHAS+"/>
</resource>
