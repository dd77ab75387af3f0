<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The processing record of a survey's products, as a stream that a survey's
  RD feeds after its image archive (published nowhere itself):

    <FEED source="common/processing#processing" survey="vista" surveyName="VVV"/>

  The rows are casuvo's processing ledger (ledger.products, written by the
  pipeline runner, casuvo.storage.ledger); the table here is a view of it, so
  it is never imported, only (re)created. -->
<resource schema="dc" resdir="common">
  <STREAM id="processing">
    <doc>
      Table processing (a view of the ledger rows of one pipeline) and the
      data element that creates it (processingView).  Macros: survey (the
      schema and the pipeline, vista or vst), surveyName (VVV, VPHAS+: for
      descriptions).
    </doc>
    <table id="processing" onDisk="True" adql="True">
      <meta name="description">The processing record of every \surveyName product:
        which pipeline run made it, from which inputs (with SHA-256 checksums),
        with which parameters, its QC and timing (a view of the casuvo
        ledger).  The images' DataLink (#provenance) points here.</meta>
      <meta name="table-rank">60</meta>
      <column name="run_id" type="text" ucd="meta.id;meta.dataset"
        description="Processing run (also in \survey.images.run_id)."/>
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
        CREATE OR REPLACE VIEW \\curtable AS (
          SELECT run_id, product, kind, status, array_to_json(files)::text AS files,
            inputs::text AS inputs, params::text AS params, qc::text AS qc, message,
            seconds, code_version, finished::timestamp AS finished
          FROM ledger.products WHERE pipeline = '\survey')
      </viewStatement>
    </table>

    <data id="processingView">
      <make table="processing"/>
    </data>

    <regSuite title="\survey processing record">
      <regTest title="Every \surveyName image has a processing record">
        <url parSet="TAP" QUERY="SELECT COUNT(*) AS images, COUNT(p.product) AS recorded
          FROM \survey.images AS i LEFT OUTER JOIN
            (SELECT DISTINCT product FROM \survey.processing) AS p
            ON p.product = i.filename">/tap/sync</url>
        <code>
          row = self.getFirstVOTableRow()
          self.assertTrue(row["images"], row)
          self.assertEqual(row["recorded"], row["images"])
        </code>
      </regTest>
      <regTest title="The \surveyName processing record names kinds and statuses">
        <url parSet="TAP" QUERY="SELECT DISTINCT kind, status FROM \survey.processing"
          >/tap/sync</url>
        <code>
          rows = self.getVOTableRows()
          self.assertIn("tile", {r["kind"] for r in rows})
          self.assertLessEqual({r["kind"] for r in rows},
            {"masters", "exposure", "stack", "tile"})
          self.assertLessEqual({r["status"] for r in rows}, {"ok", "failed", "resumed"})
        </code>
      </regTest>
    </regSuite>
  </STREAM>
</resource>
