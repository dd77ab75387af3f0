<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  Benchmark baseline, never published: DaCHS's stock SODA FITS cutout service
  (//soda#fits_genDesc and //soda#fits_standardDLFuncs, nothing of casuvo's)
  on single-HDU copies of archive images.

  Stock DaCHS 2.7 SODA cuts the primary HDU of a file only (its
  FITSProductDescriptor sets imageExtind = 0), so it cannot address one
  extension of casuvo's multi-extension products.  bench/images.py writes
  each image it measures once as a single-HDU file (the same pixels and
  header) into var/bench/sodabaseline/, links this RD there, links that
  directory into DaCHS's inputs as sodabaseline/ and imports it (`dachs imp
  sodabaseline/baseline`, never `dachs pub`): the service is reachable at
  /sodabaseline/baseline/dl/dlget but in no registry record, TAP schema or
  endpoint list of the archive. -->
<resource schema="sodabaseline">
  <meta name="title">Benchmark baseline: stock DaCHS SODA cutouts (not published)</meta>
  <meta name="description">Stock DaCHS SODA on single-HDU copies of archive
    images, for bench/images.py only.</meta>
  <meta name="creationDate">2026-12-03T00:00:00Z</meta>
  <meta name="subject">sky-surveys</meta>

  <table id="images" onDisk="True" adql="False">
    <mixin>//products#table</mixin>
  </table>

  <data id="import">
    <sources pattern="*.fits"/>
    <fitsProdGrammar>
      <rowfilter procDef="//products#define">
        <bind key="table">"sodabaseline.images"</bind>
        <bind key="mime">"image/fits"</bind>
      </rowfilter>
    </fitsProdGrammar>
    <make table="images"/>
  </data>

  <service id="dl" allowed="dlget,dlmeta">
    <meta name="title">Stock DaCHS SODA (benchmark baseline)</meta>
    <datalinkCore>
      <descriptorGenerator procDef="//soda#fits_genDesc">
        <bind key="accrefPrefix">"sodabaseline/"</bind>
      </descriptorGenerator>
      <FEED source="//soda#fits_standardDLFuncs"/>
    </datalinkCore>
  </service>
</resource>
