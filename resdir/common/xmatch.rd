<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The Gaia neighbour table of a survey's source table (the VSA's
  <survey>SourceX<gaia table>) and the table listing it (the VSA's
  RequiredNeighbours), as a stream that a survey's RD feeds (published
  nowhere itself):

    <FEED source="common/xmatch#gaiaNeighbours" survey="vista" surveyName="VVV"/>

  `casuvo xmatch SURVEY` computes the pairs with casuvo.xmatch (in the
  compute environment, casuvo.catalogue.neighbourtable) and COPYs them; the column
  order here must equal casuvo.catalogue.neighbourtable.NEIGHBOUR_COLUMNS
  (tests/integration/test_xmatch_tables.py checks it). -->
<resource schema="dc" resdir="common">
  <NXSTREAM id="gaiaNeighbours">
    <doc>
      Tables sources_x_gaia (all pairs of \survey.sources and gaia.sources
      within the match radius, with match quality) and required_neighbours
      (which neighbour tables exist, against what, with which radius), and
      the data element that creates them (create_neighbours).  Macros:
      survey (the schema), surveyName (for descriptions: VVV).
    </doc>
    <table id="sources_x_gaia" onDisk="True" adql="True">
      <meta name="description">Neighbour table of \surveyName sources and Gaia
        (VSA style, like vvvSourceXGDR3gaia_source): every pair of a source of
        \survey.sources (master) and a source of gaia.sources (slave) closer than
        the match radius (2 arcsec; see \survey.required_neighbours), with the Gaia
        position moved by its proper motion to the epoch of the \surveyName
        observation.  All pairs are kept: select best_neighbour = 1 for the
        nearest Gaia source of each \surveyName source, or one_to_one = 1 for a
        one-to-one match.  Join: masterObjID = \survey.sources.sourceID,
        slaveObjID = gaia.sources.source_id.</meta>
      <meta name="table-rank">30</meta>
      <column name="masterObjID" type="bigint" required="True"
        ucd="meta.id;meta.main" tablehead="Master ID" verbLevel="1"
        description="sourceID of the \surveyName source (\survey.sources.sourceID)."/>
      <column name="slaveObjID" type="bigint" required="True"
        ucd="meta.id.cross" tablehead="Gaia source_id" verbLevel="1"
        description="source_id of the neighbouring Gaia source (gaia.sources.source_id)."/>
      <column name="distanceMins" type="real" unit="arcmin" required="True"
        ucd="pos.angDistance" tablehead="Dist." verbLevel="1"
        description="Angular separation between the neighbours (VSA convention,
          arcminutes), the Gaia position taken at the epoch of the \surveyName
          detection."/>
      <column name="angular_distance" type="double precision" unit="arcsec"
        required="True" ucd="pos.angDistance" verbLevel="5"
        description="The same separation in arcseconds at full precision (Gaia
          archive convention)."/>
      <column name="number_of_neighbours" type="integer" required="True"
        ucd="meta.number" verbLevel="5"
        description="Number of Gaia sources within the match radius of this
          \surveyName source (rows of this table with the same masterObjID)."/>
      <column name="number_of_mates" type="integer" required="True"
        ucd="meta.number" verbLevel="5"
        description="Number of other \surveyName sources within the match radius of
          this Gaia source (0 = the Gaia source is claimed by this source only)."/>
      <column name="best_neighbour" type="smallint" required="True"
        ucd="meta.code;meta.main" verbLevel="5"
        description="1 if slaveObjID is the nearest Gaia source of masterObjID
          (one row per master), else 0.">
        <values nullLiteral="-1"/>
      </column>
      <column name="one_to_one" type="smallint" required="True"
        ucd="meta.code" verbLevel="10"
        description="1 if the pair is kept by a one-to-one best match (STILTS
          tmatch2 find=best: nearest both ways as STILTS resolves it), else 0.">
        <values nullLiteral="-1"/>
      </column>
      <column name="ambiguous" type="smallint" required="True"
        ucd="meta.code.qual" verbLevel="5"
        description="1 if the pair is not isolated: the \surveyName source has
          another Gaia neighbour or the Gaia source another \surveyName neighbour
          within the radius (number_of_neighbours > 1 or number_of_mates > 0), so
          that the nearest need not be the right counterpart; else 0.">
        <values nullLiteral="-1"/>
      </column>
      <index columns="masterObjID"/>
      <index columns="slaveObjID"/>
      <!-- A pair is visible when its master source is (\survey.sources'
        release control, inherited from its tiles). -->
      <script type="postCreation" lang="SQL" name="release control">
        SELECT casuvo.protect_pairs('\\qName', '\survey.sources')
      </script>
    </table>

    <table id="required_neighbours" onDisk="True" adql="True" primary="neighbourTable">
      <meta name="description">The neighbour tables of \survey (the VSA's
        RequiredNeighbours): which exist, which tables they pair, with which
        radius, and when and from how many pairs they were built.  Written by
        `casuvo xmatch \survey` together with the neighbour table.</meta>
      <meta name="table-rank">31</meta>
      <column name="neighbourTable" type="text" required="True"
        ucd="meta.id;meta.table" verbLevel="1"
        description="The neighbour table (schema.table)."/>
      <column name="masterTable" type="text" required="True"
        ucd="meta.id;meta.table" verbLevel="1"
        description="Table whose sourceID is masterObjID."/>
      <column name="slaveTable" type="text" required="True"
        ucd="meta.id;meta.table" verbLevel="1"
        description="Table whose identifier is slaveObjID."/>
      <column name="joinCriterion" type="double precision" unit="deg" required="True"
        ucd="pos.angDistance;stat.max" verbLevel="1"
        description="Match radius (VSA convention, degrees): every pair closer than
          this is in the neighbour table."/>
      <column name="radius" type="double precision" unit="arcsec" required="True"
        ucd="pos.angDistance;stat.max" verbLevel="5"
        description="The match radius in arcseconds."/>
      <column name="epochRule" type="text" ucd="meta.note" verbLevel="10"
        description="How the epochs of the two tables were reconciled."/>
      <column name="nPairs" type="bigint" required="True" ucd="meta.number" verbLevel="5"
        description="Rows of the neighbour table."/>
      <column name="nMasters" type="bigint" required="True" ucd="meta.number" verbLevel="5"
        description="Master sources with at least one neighbour."/>
      <column name="built" type="timestamp" ucd="time.creation" verbLevel="10"
        description="When the neighbour table was loaded (UTC)."/>
    </table>

    <!-- Creates the (empty) tables and their metadata; `casuvo xmatch \survey`
      fills them. -->
    <data id="create_neighbours">
      <make table="sources_x_gaia"/>
      <make table="required_neighbours"/>
    </data>

    <regSuite title="\survey Gaia neighbour table">
      <regTest title="\survey.required_neighbours describes \survey.sources_x_gaia">
        <url parSet="TAP" QUERY="SELECT r.neighbourTable, r.masterTable, r.slaveTable,
            r.radius, r.joinCriterion, r.nPairs, c.n
          FROM \survey.required_neighbours AS r
          CROSS JOIN (SELECT COUNT(*) AS n FROM \survey.sources_x_gaia) AS c"
          >/tap/sync</url>
        <code>
          row = self.getUnique(self.getVOTableRows())
          self.assertEqual((row["neighbourTable"], row["masterTable"], row["slaveTable"]),
            ("\survey.sources_x_gaia", "\survey.sources", "gaia.sources"))
          self.assertEqual(row["radius"], 2.0)
          self.assertAlmostEqual(row["joinCriterion"] * 3600, 2.0)
          self.assertTrue(row["n"], row)
          # nPairs counts every pair; the test asks anonymously and sees the
          # pairs of public sources only (release control)
          self.assertLessEqual(row["n"], row["nPairs"])
        </code>
      </regTest>
      <regTest title="\survey.sources_x_gaia has one best neighbour per master, within 2 arcsec">
        <url parSet="TAP" QUERY="SELECT COUNT(*) AS best,
            COUNT(DISTINCT masterObjID) AS masters, MAX(angular_distance) AS widest
          FROM \survey.sources_x_gaia WHERE best_neighbour = 1">/tap/sync</url>
        <code>
          row = self.getFirstVOTableRow()
          self.assertTrue(row["best"], row)
          self.assertEqual(row["best"], row["masters"])
          self.assertLessEqual(row["widest"], 2.0)
        </code>
      </regTest>
    </regSuite>
  </NXSTREAM>
</resource>
