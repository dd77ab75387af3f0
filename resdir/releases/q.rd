<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  ESO Phase 3 releases of the archive (casuvo release build): one row per
  release and one per released file, views of casuvo's ledger tables
  (ledger.releases, ledger.release_products, casuvo.storage.releases), so
  they are never imported, only (re)created.  The ledger tables carry the
  release's group and are under the archive's release control: a group's
  release is listed to its members only. -->
<resource schema="releases" resdir="releases">
  <meta name="title">casuvo ESO Phase 3 releases</meta>
  <meta name="description">
    The survey releases the data centre delivered to ESO through Phase 3:
    for each, the query over the archive that selected its products, the
    counts per product category, the archive state it was built from
    (pipeline runs, code version) and every file with its checksums.
  </meta>
  <meta name="creationDate">2026-12-04T00:00:00Z</meta>
  <meta name="subject">astronomical-databases</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Archive</meta>

  <table id="releases" onDisk="True" adql="True">
    <meta name="description">ESO Phase 3 releases built from the archive:
      name, date, selecting query, group, product counts per category,
      archive state and manifest.</meta>
    <meta name="table-rank">70</meta>
    <column name="name" type="text" ucd="meta.id;meta.main"
      description="Release name (ESO data collection and release)."/>
    <column name="built" type="timestamp" ucd="time.creation"
      description="When the release was built."/>
    <column name="query" type="text" ucd="meta.code"
      description="The query over the archive that selected its products."/>
    <column name="owner_group" type="text" ucd="meta.id"
      description="Group the release was built for (NULL: public)."/>
    <column name="release_date" type="date" ucd="time.release"
      description="When its proprietary products become public (NULL: public now)."/>
    <column name="n_files" type="integer" ucd="meta.number" required="True"
      description="Files delivered."/>
    <column name="counts" type="text" ucd="meta.number"
      description="Files per product category (JSON)."/>
    <column name="archive_state" type="text" ucd="meta.code"
      description="Pipeline runs and code versions of its products (JSON)."/>
    <column name="manifest" type="text" ucd="meta.file"
      description="The release manifest (JSON): files, checksums, external provenance."/>
    <viewStatement>
      CREATE OR REPLACE VIEW \curtable AS (
        SELECT name, built::timestamp AS built, query, owner_group, release_date, n_files,
          counts::text AS counts, archive_state::text AS archive_state,
          manifest::text AS manifest
        FROM ledger.releases)
    </viewStatement>
  </table>

  <table id="products" onDisk="True" adql="True">
    <meta name="description">Every file of every Phase 3 release, with its
      category, archive accref and checksums.</meta>
    <meta name="table-rank">71</meta>
    <foreignKey source="release" inTable="releases" dest="name"/>
    <column name="release" type="text" ucd="meta.id;meta.dataset"
      description="Release name (releases.releases.name)."/>
    <column name="filename" type="text" ucd="meta.id;meta.file"
      description="File name in the release."/>
    <column name="prodcatg" type="text" ucd="meta.code.class"
      description="ESO product category (PRODCATG)."/>
    <column name="accref" type="text" ucd="meta.ref"
      description="The archive product it was made from (dc.products accref)."/>
    <column name="md5" type="text" ucd="meta.checksum"
      description="MD5 of the released file."/>
    <column name="sha256" type="text" ucd="meta.checksum"
      description="SHA-256 of the released file."/>
    <column name="file_size" type="bigint" unit="byte" ucd="phys.size;meta.file" required="True"
      description="Size of the released file."/>
    <viewStatement>
      CREATE OR REPLACE VIEW \curtable AS (
        SELECT release, filename, prodcatg, accref, md5, sha256, size AS file_size
        FROM ledger.release_products)
    </viewStatement>
  </table>

  <data id="views">
    <make table="releases"/>
    <make table="products"/>
  </data>

  <service id="list" allowed="form">
    <meta name="shortName">Phase 3 releases</meta>
    <meta name="title">ESO Phase 3 releases</meta>
    <meta name="description">The releases delivered to ESO: name, date,
      query, counts per category.  Their files are in the TAP table
      releases.products.</meta>
    <FEED source="common/images#siteLook"/>
    <publish render="form" sets="local"/>
    <dbCore queriedTable="releases">
      <condDesc buildFrom="name"/>
    </dbCore>
    <outputTable>
      <outputField original="name"/>
      <outputField original="built"/>
      <outputField original="owner_group"/>
      <outputField original="n_files"/>
      <outputField original="counts"/>
      <outputField original="query"/>
    </outputTable>
  </service>

  <regSuite title="Phase 3 releases">
    <regTest title="The release tables are in TAP">
      <url parSet="TAP" QUERY="SELECT table_name FROM tap_schema.tables
        WHERE table_name LIKE 'releases.%'">/tap/sync</url>
      <code>
        rows = self.getVOTableRows()
        self.assertEqual({r["table_name"] for r in rows},
          {"releases.releases", "releases.products"})
      </code>
    </regTest>
    <regTest title="The release page lists releases">
      <url __nevow_form__="genForm">list/form</url>
      <code>
        self.assertHasStrings("ESO Phase 3 releases", "n_files")
      </code>
    </regTest>
  </regSuite>
</resource>
