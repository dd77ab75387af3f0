<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="gaia" resdir="gaia">
  <meta name="title">casuvo Gaia DR3-like reference catalogue</meta>
  <meta name="description">
    The astrometric and photometric reference catalogue of the casuvo survey
    data centre: a simulated extract of Gaia DR3 (gaia_source) over the demo
    survey fields, with Gaia DR3 column names, units and UCDs.  source_id
    encodes the nested HEALPix level-12 index of the source exactly as Gaia
    does (healpix12 = source_id / 2^35); positions are ICRS at the reference
    epoch J2016.0.  The imaging pipelines calibrate their astrometry against
    it, propagating proper motions to the epoch of each exposure.
  </meta>
  <meta name="creationDate">2026-11-25T00:00:00Z</meta>
  <meta name="subject">astrometry</meta>
  <meta name="subject">proper-motions</meta>
  <meta name="subject">photometry</meta>
  <meta name="subject">sky-surveys</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Catalog</meta>
  <meta name="coverage.waveband">Optical</meta>
  <meta name="source">Gaia Collaboration, Vallenari et al. 2023, A&amp;A 674, A1 (data model)</meta>
  <meta name="_longdoc" format="rst">
    Querying
    ========

    Positions are indexed once, by a functional pgSphere GiST index on the
    pair (ra, dec), the one DaCHS's ``//scs#pgs-pos-index`` mixin declares.
    DaCHS translates ``CONTAINS(POINT('ICRS', ra, dec), CIRCLE(...))`` (or a
    POLYGON) and ``DISTANCE(POINT('ICRS', ra, dec), POINT(...)) &lt; r`` into
    ``spoint(RADIANS(ra), RADIANS(dec)) &lt;@ ...``, which is that index's
    expression: these queries, joins with uploaded tables and the cone search
    service use it.  ``pos`` is the same position as a stored pgSphere point,
    for reading and for geometry in the select list; it has no index of its
    own (a second GiST of the same positions doubled the index build of an
    ingest), so ``CONTAINS(pos, ...)`` and ``DISTANCE(pos, ...)`` in a WHERE or
    ON clause scan the whole table: write cones and joins on
    ``POINT('ICRS', ra, dec)``.  ``healpix12`` (btree) is derived from
    source_id; integer division of it by 4^(12-k) gives the HEALPix index at
    level k.
  </meta>

  <table id="sources" onDisk="True" adql="True" mixin="//scs#pgs-pos-index">
    <meta name="description">One row per source of the Gaia DR3-like reference
      catalogue (the gaia_source columns casuvo uses).</meta>
    <meta name="table-rank">10</meta>
    <meta name="_associatedDatalinkService">
      <meta name="serviceId">dl</meta>
      <meta name="idColumn">source_id</meta>
    </meta>

    <column name="source_id" type="bigint" required="True"
      ucd="meta.id;meta.main" tablehead="Source ID" verbLevel="1"
      description="Unique source identifier; encodes the nested HEALPix level-12
        index: healpix12 = source_id / 2^35 (as in Gaia DR3)."/>
    <column name="random_index" type="bigint" required="True"
      ucd="meta.code" verbLevel="25"
      description="Random index for selecting random subsets (a permutation of
        0..N-1)."/>
    <column name="ref_epoch" type="double precision" unit="yr"
      ucd="meta.ref;time.epoch" verbLevel="20"
      description="Reference epoch of the positions (Julian year, 2016.0)."/>
    <column name="ra" type="double precision" unit="deg"
      ucd="pos.eq.ra;meta.main" tablehead="RA" verbLevel="1"
      description="Right ascension (ICRS) at ref_epoch."/>
    <column name="ra_error" type="real" unit="mas"
      ucd="stat.error;pos.eq.ra" verbLevel="15"
      description="Standard uncertainty in right ascension, sigma(ra*) = sigma(ra) cos(dec)."/>
    <column name="dec" type="double precision" unit="deg"
      ucd="pos.eq.dec;meta.main" tablehead="Dec" verbLevel="1"
      description="Declination (ICRS) at ref_epoch."/>
    <column name="dec_error" type="real" unit="mas"
      ucd="stat.error;pos.eq.dec" verbLevel="15"
      description="Standard uncertainty in declination."/>
    <column name="parallax" type="double precision" unit="mas"
      ucd="pos.parallax.trig" verbLevel="10"
      description="Parallax (NULL for 2-parameter solutions)."/>
    <column name="parallax_error" type="real" unit="mas"
      ucd="stat.error;pos.parallax.trig" verbLevel="15"
      description="Standard uncertainty in parallax."/>
    <column name="parallax_over_error" type="real"
      ucd="stat.snr;pos.parallax.trig" verbLevel="20"
      description="Parallax divided by its standard error."/>
    <column name="pm" type="real" unit="mas/yr"
      ucd="pos.pm;pos.eq" verbLevel="15"
      description="Total proper motion, sqrt(pmra^2 + pmdec^2)."/>
    <column name="pmra" type="double precision" unit="mas/yr"
      ucd="pos.pm;pos.eq.ra" verbLevel="10"
      description="Proper motion in right ascension, mu_ra* = mu_ra cos(dec)."/>
    <column name="pmra_error" type="real" unit="mas/yr"
      ucd="stat.error;pos.pm;pos.eq.ra" verbLevel="15"
      description="Standard uncertainty in pmra."/>
    <column name="pmdec" type="double precision" unit="mas/yr"
      ucd="pos.pm;pos.eq.dec" verbLevel="10"
      description="Proper motion in declination."/>
    <column name="pmdec_error" type="real" unit="mas/yr"
      ucd="stat.error;pos.pm;pos.eq.dec" verbLevel="15"
      description="Standard uncertainty in pmdec."/>
    <column name="ra_dec_corr" type="real"
      ucd="stat.correlation" verbLevel="25"
      description="Correlation between ra and dec."/>
    <column name="astrometric_params_solved" type="smallint" required="True"
      ucd="meta.number" verbLevel="20"
      description="Which parameters were solved for: 3 = 2-parameter (position),
        31 = 5-parameter (position, parallax, proper motion).">
      <values nullLiteral="-1"/>
    </column>
    <column name="ruwe" type="real"
      ucd="stat.fit.goodness" verbLevel="15"
      description="Renormalised unit weight error (about 1 for well-behaved
        single stars; above 1.4 suspect)."/>
    <column name="phot_g_mean_flux" type="double precision" unit="electron/s"
      ucd="phot.flux;em.opt" verbLevel="20"
      description="G-band mean flux."/>
    <column name="phot_g_mean_flux_error" type="real" unit="electron/s"
      ucd="stat.error;phot.flux;em.opt" verbLevel="20"
      description="Error on the G-band mean flux."/>
    <column name="phot_g_mean_mag" type="real" unit="mag"
      ucd="phot.mag;em.opt" tablehead="G" verbLevel="1"
      description="G-band mean magnitude (Vega)."/>
    <column name="phot_bp_mean_mag" type="real" unit="mag"
      ucd="phot.mag;em.opt.B" tablehead="BP" verbLevel="10"
      description="Integrated BP mean magnitude (Vega)."/>
    <column name="phot_rp_mean_mag" type="real" unit="mag"
      ucd="phot.mag;em.opt.R" tablehead="RP" verbLevel="10"
      description="Integrated RP mean magnitude (Vega)."/>
    <column name="bp_rp" type="real" unit="mag"
      ucd="phot.color;em.opt.B;em.opt.R" tablehead="BP-RP" verbLevel="5"
      description="BP - RP colour."/>
    <column name="bp_g" type="real" unit="mag"
      ucd="phot.color;em.opt.B;em.opt" verbLevel="20"
      description="BP - G colour."/>
    <column name="g_rp" type="real" unit="mag"
      ucd="phot.color;em.opt;em.opt.R" verbLevel="20"
      description="G - RP colour."/>
    <column name="radial_velocity" type="real" unit="km/s"
      ucd="spect.dopplerVeloc.opt;em.opt.I" verbLevel="10"
      description="Spectroscopic barycentric radial velocity (bright stars only)."/>
    <column name="radial_velocity_error" type="real" unit="km/s"
      ucd="stat.error;spect.dopplerVeloc.opt;em.opt.I" verbLevel="15"
      description="Radial velocity error."/>
    <column name="phot_variable_flag" type="text"
      ucd="meta.code;src.var" verbLevel="20"
      description="Photometric variability flag: VARIABLE or NOT_AVAILABLE."/>
    <column name="l" type="double precision" unit="deg"
      ucd="pos.galactic.lon" verbLevel="10"
      description="Galactic longitude."/>
    <column name="b" type="double precision" unit="deg"
      ucd="pos.galactic.lat" verbLevel="10"
      description="Galactic latitude."/>
    <column name="ecl_lon" type="double precision" unit="deg"
      ucd="pos.ecliptic.lon" verbLevel="25"
      description="Ecliptic longitude."/>
    <column name="ecl_lat" type="double precision" unit="deg"
      ucd="pos.ecliptic.lat" verbLevel="25"
      description="Ecliptic latitude."/>
    <!-- Generated by PostgreSQL from the columns above (see the preIndex
      script); casuvo's COPY leaves them out. -->
    <column name="designation" type="text" required="True"
      ucd="meta.id" verbLevel="15"
      description="Unique source designation, 'Gaia DR3 ' followed by source_id."/>
    <column name="healpix12" type="bigint" required="True"
      ucd="pos.healpix" verbLevel="20"
      description="Nested HEALPix index at level 12 (source_id / 2^35)."/>
    <column name="pos" type="spoint"
      ucd="pos.eq" verbLevel="25"
      description="Position (ra, dec) as a pgSphere point.  Not indexed: for
        cones and joins write POINT('ICRS', ra, dec), which is."/>

    <index columns="source_id"/>
    <index columns="healpix12"/>
    <!-- No GiST on pos: the mixin's functional index on spoint(ra, dec) is the
      one DaCHS's ADQL (POINT(ra, dec)) and SCS SQL use. -->

    <script type="preIndex" lang="SQL" name="generated columns">
      ALTER TABLE \qName DROP COLUMN designation, DROP COLUMN healpix12,
        DROP COLUMN pos;
      ALTER TABLE \qName
        ADD COLUMN designation text
          GENERATED ALWAYS AS ('Gaia DR3 ' || source_id::text) STORED,
        ADD COLUMN healpix12 bigint
          GENERATED ALWAYS AS (source_id / 34359738368) STORED,
        ADD COLUMN pos spoint
          GENERATED ALWAYS AS (spoint(radians(ra), radians(dec))) STORED
    </script>
  </table>

  <!-- Creates the (empty) table and its metadata; casuvo's COPY path
    (`casuvo ingest gaia`) fills it. -->
  <data id="create">
    <make table="sources"/>
  </data>

  <!-- DataLink of a source (ID = source_id): its row and the spectra of the
    spectroscopic archives that observed it (casuvo.dachs.spectra). -->
  <service id="dl" allowed="dlmeta">
    <meta name="title">casuvo Gaia source DataLink</meta>
    <meta name="description">DataLink for a source of the Gaia DR3-like
      reference catalogue (ID = source_id): its row and the spectra of
      it in the spectroscopic archives.</meta>
    <meta name="dlmeta.description">DataLink documents of Gaia sources.</meta>
    <datalinkCore>
      <descriptorGenerator>
        <setup imports="casuvo.dachs.spectra"/>
        <code>
          return spectra.gaia_descriptor(pubDID)
        </code>
      </descriptorGenerator>
      <metaMaker semantics="#auxiliary">
        <setup imports="casuvo.dachs.spectra"/>
        <code>
          yield from spectra.gaia_links(descriptor)
        </code>
      </metaMaker>
    </datalinkCore>
  </service>

  <service id="cone" allowed="form,scs.xml">
    <meta name="shortName">casuvo Gaia cone</meta>
    <meta name="title">casuvo Gaia reference catalogue cone search</meta>
    <meta name="description">Simple Cone Search and a web form over the
      Gaia DR3-like reference catalogue of the casuvo demo fields.</meta>
    <meta name="testQuery.ra">194.30</meta>
    <meta name="testQuery.dec">-64.75</meta>
    <meta name="testQuery.sr">0.01</meta>
    <dbCore queriedTable="sources">
      <FEED source="common/shared#scsCoreDescs"/>
      <condDesc buildFrom="phot_g_mean_mag"/>
    </dbCore>
    <outputTable verbLevel="20"/>
    <publish render="scs.xml" sets="ivo_managed"/>
    <publish render="form" sets="ivo_managed,local"/>
  </service>

  <regSuite title="gaia regression">
    <regTest title="Gaia cone search answers with sources near the VVV field">
      <url RA="194.30" DEC="-64.75" SR="0.01">cone/scs.xml</url>
      <code>
        self.assertHasStrings('name="source_id"', 'ucd="POS_EQ_RA_MAIN"')
        rows = self.getVOTableRows()
        self.assertTrue(len(rows) > 10, "too few sources in a 36 arcsec cone")
        from astropy.coordinates import SkyCoord
        found = SkyCoord([r["ra"] for r in rows], [r["dec"] for r in rows], unit="deg")
        centre = SkyCoord(194.30, -64.75, unit="deg")
        self.assertLessEqual(max(centre.separation(found).deg), 0.01)
      </code>
    </regTest>
    <regTest title="Gaia: designation and healpix12 are derived from source_id">
      <url parSet="TAP" QUERY="SELECT a.n AS sources, b.n AS inconsistent
        FROM (SELECT COUNT(*) AS n FROM gaia.sources) AS a
        CROSS JOIN (SELECT COUNT(*) AS n FROM gaia.sources
          WHERE NOT (healpix12 = source_id / 34359738368)
            OR designation NOT LIKE 'Gaia DR3 %') AS b"
        >/tap/sync</url>
      <code>
        row = self.getFirstVOTableRow()
        self.assertTrue(row["sources"], row)
        self.assertEqual(row["inconsistent"], 0)
      </code>
    </regTest>
    <regTest title="Gaia cone search rejects a declination above 90 deg">
      <url RA="10" DEC="100" SR="0.1">cone/scs.xml</url>
      <code>
        self.assertHTTPStatus(400)
        self.assertHasStrings('name="Error"')
      </code>
    </regTest>
  </regSuite>
</resource>
