<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The band-merged source catalogue of a survey (the VSA's <survey>Source), as
  streams that a survey's RD feeds (published nowhere itself):

    <FEED source="common/sources#sources" survey="vista" surveyName="VVV"
      camera="VISTA/VIRCAM" testRA="194.30" testDec="-64.75"/>

  casuvo.catalogue.bandmerge computes the rows (its module docstring documents frame
  sets, pairing, photometry, classes, error bits and sourceID);
  `casuvo ingest sources SURVEY` COPYs them.  Column names, types and order
  here must equal casuvo.catalogue.bandmerge.column_names(survey) plus the generated
  healpix12 and pos (tests/integration/test_sources.py checks it). -->
<resource schema="dc" resdir="common">

  <STREAM id="bandColumns">
    <doc>
      The columns of one passband of a merged source table.  Macros: prefix
      (VSA column prefix, e.g. ks), filterName (e.g. Ks), emWord (the UCD
      word of the band, e.g. em.IR.K).
    </doc>
    <column name="\prefix\+AperMag3" type="real" unit="mag"
      ucd="phot.mag;\emWord" tablehead="\filterName ap3" verbLevel="1"
      description="\filterName point-source magnitude in aperture 3 (radius 1 arcsec,
        2 arcsec diameter), aperture-corrected (Vega): MAGZPT - 2.5 log10(flux/EXPTIME)
        - APCOR3 - EXTINCT (airmass - 1).  NULL if undetected or the flux is not
        positive."/>
    <column name="\prefix\+AperMag3Err" type="real" unit="mag"
      ucd="stat.error;phot.mag;\emWord" verbLevel="10"
      description="Photon-noise error of \prefix\+AperMag3 (without the zero-point
        error)."/>
    <column name="\prefix\+AperMag4" type="real" unit="mag"
      ucd="phot.mag;\emWord" verbLevel="15"
      description="\filterName magnitude in aperture 4 (radius 1.41 arcsec, 2.8 arcsec
        diameter), aperture-corrected (Vega)."/>
    <column name="\prefix\+AperMag4Err" type="real" unit="mag"
      ucd="stat.error;phot.mag;\emWord" verbLevel="15"
      description="Photon-noise error of \prefix\+AperMag4."/>
    <column name="\prefix\+Class" type="smallint"
      ucd="src.class.starGalaxy;\emWord" verbLevel="10"
      description="CASU morphological class in \filterName: -1 stellar, +1 non-stellar,
        0 noise, -2 borderline stellar, -9 saturated.">
      <values nullLiteral="-99"/>
    </column>
    <column name="\prefix\+Ell" type="real"
      ucd="src.ellipticity;\emWord" verbLevel="20"
      description="Ellipticity 1 - b/a of the \filterName detection."/>
    <column name="\prefix\+ppErrBits" type="integer"
      ucd="meta.code.qual;\emWord" verbLevel="10"
      description="Post-processing error bits of the \filterName detection (VSA
        numbering; 0 = clean): 64 bad pixels in the default aperture (or the aperture
        leaves the image), 128 low confidence (below 80 per cent) in the default
        aperture, 65536 close to saturation.">
      <values nullLiteral="-99999999"/>
    </column>
    <column name="\prefix\+Xi" type="real" unit="arcsec"
      ucd="pos.eq.ra;arith.diff;\emWord" verbLevel="20"
      description="Offset of the \filterName position from (ra, dec), towards east, in
        the tangent plane."/>
    <column name="\prefix\+Eta" type="real" unit="arcsec"
      ucd="pos.eq.dec;arith.diff;\emWord" verbLevel="20"
      description="Offset of the \filterName position from (ra, dec), towards north, in
        the tangent plane."/>
    <column name="\prefix\+mjd" type="double precision" unit="d"
      ucd="time.epoch;\emWord" verbLevel="15"
      description="Modified Julian Date (MJD-OBS, start) of the \filterName tile the
        detection comes from."/>
  </STREAM>

  <STREAM id="colourColumns">
    <doc>
      A point-source colour and its error.  Macros: blue, red (column
      prefixes), blueName, redName (filter names), blueWord, redWord (UCD
      words).
    </doc>
    <column name="\blue\+m\red\+Pnt" type="real" unit="mag"
      ucd="phot.color;\blueWord;\redWord" tablehead="\blueName-\redName" verbLevel="5"
      description="Point-source colour \blueName - \redName from the aperture 3
        magnitudes; NULL unless both bands are measured."/>
    <column name="\blue\+m\red\+PntErr" type="real" unit="mag"
      ucd="stat.error;phot.color;\blueWord;\redWord" verbLevel="15"
      description="Error of \blue\+m\red\+Pnt."/>
  </STREAM>

  <NXSTREAM id="sources">
    <doc>
      The band-merged source table of a survey (table sources), the data
      element that creates it (create_sources; casuvo's COPY fills it) and
      its Simple Cone Search service (cone).  Macros: survey (vista or vst:
      the schema and which bands), surveyName and camera (for descriptions:
      "surveyName (camera)", e.g. VVV (VISTA/VIRCAM)), testRA,
      testDec (a position inside the survey, for the service's test query
      and the regression tests).
    </doc>
    <table id="sources" onDisk="True" adql="True" mixin="//scs#pgs-pos-index"
        primary="sourceID">
      <meta name="description">One row per source of the \surveyName (\camera) band-merged
        source catalogue: the pipeline's tile catalogues of each field, one tile per
        passband (a frame set), paired within 1 arcsec (as in the VSA Source style).
        Missing bands are NULL.</meta>
      <meta name="table-rank">20</meta>

      <column name="sourceID" type="bigint" required="True"
        ucd="meta.id;meta.main" tablehead="Source ID" verbLevel="1"
        description="Unique source identifier; encodes the nested HEALPix level-12 index
          as Gaia does: healpix12 = sourceID / 2^35."/>
      <column name="frameSetID" type="bigint" required="True"
        ucd="meta.id;obs.field" verbLevel="10"
        description="Frame set (the tiles, one per passband, of one field) the source was
          merged from: survey code * 2^32 + CRC-32 of the field name."/>
      <column name="ra" type="double precision" unit="deg" required="True"
        ucd="pos.eq.ra;meta.main" tablehead="RA" verbLevel="1"
        description="Right ascension (ICRS): mean of the band positions."/>
      <column name="dec" type="double precision" unit="deg" required="True"
        ucd="pos.eq.dec;meta.main" tablehead="Dec" verbLevel="1"
        description="Declination (ICRS): mean of the band positions."/>
      <column name="mergedClass" type="smallint" required="True"
        ucd="src.class.starGalaxy" tablehead="Class" verbLevel="1"
        description="Class from all bands (VSA convention): 1 galaxy, -1 star, -2
          probable star, -3 probable galaxy, 0 noise, -9 saturated.">
        <values nullLiteral="-99"/>
      </column>
      <column name="pStar" type="real"
        ucd="stat.probability;src.class.starGalaxy" verbLevel="15"
        description="Probability that the source is a star (bands combined; NULL if
          saturated in every band)."/>
      <column name="pGalaxy" type="real"
        ucd="stat.probability;src.class.starGalaxy" verbLevel="15"
        description="Probability that the source is a galaxy."/>
      <column name="pNoise" type="real"
        ucd="stat.probability" verbLevel="15"
        description="Probability that the source is noise."/>
      <column name="pSaturated" type="real"
        ucd="stat.probability" verbLevel="15"
        description="1 if the source is saturated in any band, else 0."/>

      <!-- The survey's colours and bands, from its config file (the registry). -->
      <LOOP source="common/sources#colourColumns">
        <codeItems>
          from casuvo.dachs.surveyrd import colour_items
          yield from colour_items("\survey")
        </codeItems>
      </LOOP>
      <LOOP source="common/sources#bandColumns">
        <codeItems>
          from casuvo.dachs.surveyrd import band_items
          yield from band_items("\survey")
        </codeItems>
      </LOOP>

      <!-- Generated by PostgreSQL from the columns above (see the preIndex
        script); casuvo's COPY leaves them out. -->
      <column name="healpix12" type="bigint" required="True"
        ucd="pos.healpix" verbLevel="25"
        description="Nested HEALPix index at level 12 (sourceID / 2^35)."/>
      <column name="pos" type="spoint"
        ucd="pos.eq" verbLevel="30"
        description="Position (ra, dec) as a pgSphere point, for ADQL geometry."/>

      <index columns="healpix12"/>
      <index columns="frameSetID"/>
      <index columns="pos" method="GIST"/>

      <script type="preIndex" lang="SQL" name="generated columns">
        ALTER TABLE \\qName DROP COLUMN healpix12, DROP COLUMN pos;
        ALTER TABLE \\qName
          ADD COLUMN healpix12 bigint
            GENERATED ALWAYS AS (sourceID / 34359738368) STORED,
          ADD COLUMN pos spoint
            GENERATED ALWAYS AS (spoint(radians(ra), radians(dec))) STORED
      </script>
      <!-- A source is visible when every tile of its frame set is
        (casuvo.framesets, filled by `casuvo ingest sources`; the tiles'
        release control in \survey.images): merged rows inherit the
        release of the products they are measured on. -->
      <script type="postCreation" lang="SQL" name="release control">
        SELECT casuvo.protect_sources('\\qName', '\survey')
      </script>
    </table>

    <!-- Creates the (empty) table and its metadata; casuvo's COPY path
      (`casuvo ingest sources \survey`) fills it. -->
    <data id="create_sources">
      <make table="sources"/>
    </data>

    <service id="cone" allowed="form,scs.xml">
      <meta name="shortName">\survey sources</meta>
      <meta name="title">casuvo \surveyName (\camera) merged sources cone search</meta>
      <meta name="description">Simple Cone Search and a web form over the
        \surveyName (\camera) band-merged source catalogue of the casuvo demo survey.</meta>
      <meta name="testQuery.ra">\testRA</meta>
      <meta name="testQuery.dec">\testDec</meta>
      <meta name="testQuery.sr">0.01</meta>
      <dbCore queriedTable="sources">
        <FEED source="common/shared#scsCoreDescs"/>
        <condDesc buildFrom="mergedClass"/>
      </dbCore>
      <outputTable verbLevel="20"/>
      <publish render="scs.xml" sets="ivo_managed"/>
      <publish render="form" sets="ivo_managed,local"/>
    </service>

    <regSuite title="\survey sources regression">
      <regTest title="\survey merged-source cone search answers near the test position">
        <url RA="\testRA" DEC="\testDec" SR="0.01">cone/scs.xml</url>
        <code>
          self.assertHasStrings('name="sourceID"', 'name="mergedClass"')
          rows = self.getVOTableRows()
          self.assertTrue(len(rows) > 10, "too few sources in a 36 arcsec cone")
          from astropy.coordinates import SkyCoord
          found = SkyCoord([r["ra"] for r in rows], [r["dec"] for r in rows], unit="deg")
          centre = SkyCoord(\testRA, \testDec, unit="deg")
          self.assertLessEqual(max(centre.separation(found).deg), 0.01)
        </code>
      </regTest>
      <regTest title="\survey merged sources: healpix12 is derived from sourceID">
        <url parSet="TAP" QUERY="SELECT a.n AS sources, b.n AS inconsistent
          FROM (SELECT COUNT(*) AS n FROM \survey.sources) AS a
          CROSS JOIN (SELECT COUNT(*) AS n FROM \survey.sources
            WHERE NOT (healpix12 = sourceID / 34359738368)) AS b">/tap/sync</url>
        <code>
          row = self.getFirstVOTableRow()
          self.assertTrue(row["sources"], row)
          self.assertEqual(row["inconsistent"], 0)
        </code>
      </regTest>
      <regTest title="\survey merged-source cone search rejects a negative radius">
        <url RA="\testRA" DEC="\testDec" SR="-1">cone/scs.xml</url>
        <code>
          self.assertHTTPStatus(400)
          self.assertHasStrings('name="Error"')
        </code>
      </regTest>
    </regSuite>
  </NXSTREAM>
</resource>
