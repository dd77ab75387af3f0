<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  Site-wide DaCHS configuration of the casuvo data centre: the registry
  records, the TAP service description and its examples (served at
  /tap/examples).  Copied to var/dachs/etc/userconfig.rd by `casuvo up`. -->
<resource schema="__system">

  <STREAM id="registry-interfacerecords">
    <resRec id="authority">
      <meta>
        resType: authority
        creationDate: \metaString{authority.creationDate}
        title: \\metaString{authority.title}{UNCONFIGURED}
        shortName: \\metaString{authority.shortName}
        subject: Authority
        managingOrg: \\metaString{publisher}
        referenceURL: \\metaString{authority.referenceURL}{UNCONFIGURED}
        identifier: ivo://\getConfig{ivoa}{authority}
        sets: ivo_managed
      </meta>
      <meta name="description">
        \\metaString{authority.description}{UNCONFIGURED}
      </meta>
    </resRec>

    <service id="registry" allowed="pubreg.xml">
      <registryCore/>
      <publish render="pubreg.xml" sets="ivo_managed">
        <meta name="accessURL"
          >\getConfig{web}{serverURL}\getConfig{web}{nevowRoot}oai.xml</meta>
      </publish>
      <meta name="resType">registry</meta>
      <meta name="title">\getConfig{web}{sitename} Registry</meta>
      <meta name="creationDate">\metaString{authority.creationDate}</meta>
      <meta name="description">
        The publishing registry for the \getConfig{web}{sitename}.
      </meta>
      <meta name="subject">virtual-observatories</meta>
      <meta name="shortName">\\metaString{authority.shortName} RG</meta>
      <meta name="content.type">Archive</meta>
      <meta name="rights">public</meta>
      <meta name="harvest.description">The harvesting interface for
        the publishing registry of the \getConfig{web}{sitename}</meta>
      <meta name="maxRecords">10000</meta>
      <meta name="managedAuthority">\getConfig{ivoa}{authority}</meta>
      <meta name="publisher">The staff at the \getConfig{web}{sitename}</meta>
    </service>
  </STREAM>

  <STREAM id="tapexamples">
    <meta name="_example" title="Cone search on the Gaia reference catalogue">
      All Gaia sources within 2 arcmin of a position in the VVV disc field,
      brightest first.  The point built from ra and dec uses the table's
      pgSphere index:

      .. tapquery::

        SELECT source_id, ra, dec, phot_g_mean_mag, bp_rp,
          DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 194.30, -64.75)) AS dist
        FROM gaia.sources
        WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 194.30, -64.75, 0.0333))
        ORDER BY phot_g_mean_mag
    </meta>

    <meta name="_example" title="Cross-match an uploaded list with Gaia">
      Upload a table of positions (here called ``mine`` with columns ``ra``
      and ``dec``, e.g. from TOPCAT or pyvo) and find every Gaia source within
      one arcsecond of each, with the separation in arcsec:

      .. tapquery::

        SELECT m.*, g.source_id, g.phot_g_mean_mag,
          3600*DISTANCE(POINT('ICRS', m.ra, m.dec), POINT('ICRS', g.ra, g.dec)) AS sep_arcsec
        FROM TAP_UPLOAD.mine AS m
        JOIN gaia.sources AS g
        ON 1=CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', m.ra, m.dec, 1./3600))
    </meta>

    <meta name="_example" title="Cross-match an uploaded list with VVV sources">
      The same with the VVV band-merged sources: every ``vista.sources`` row
      within one arcsecond of each uploaded position, nearest first.  Both the
      CONTAINS join and the DISTANCE use the pgSphere (GiST) index on the
      sources' positions, so uploads of many thousands of rows stay fast:

      .. tapquery::

        SELECT m.*, s.sourceID, s.jAperMag3, s.ksAperMag3, s.mergedClass,
          3600*DISTANCE(POINT('ICRS', m.ra, m.dec), POINT('ICRS', s.ra, s.dec)) AS sep_arcsec
        FROM TAP_UPLOAD.mine AS m
        JOIN vista.sources AS s
        ON 1=CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', m.ra, m.dec, 1./3600))
        ORDER BY sep_arcsec
    </meta>

    <meta name="_example" title="Gaia counterparts of VVV sources (neighbour table)">
      ``vista.sources_x_gaia`` holds every pair of a VVV source and a Gaia
      source within 2 arcsec (VSA style: masterObjID, slaveObjID,
      distanceMins), the Gaia position moved by its proper motion to the VVV
      epoch, with match quality.  The nearest Gaia source of each VVV source
      is the row with ``best_neighbour = 1``; ``ambiguous = 0`` keeps the
      isolated one-to-one pairs.  Here: bright VVV stars with their Gaia
      astrometry and colours:

      .. tapquery::

        SELECT TOP 200 s.sourceID, s.ra, s.dec, s.ksAperMag3 AS ks, s.jmhPnt,
          x.slaveObjID AS source_id, x.angular_distance, x.number_of_neighbours,
          g.parallax, g.pmra, g.pmdec, g.phot_g_mean_mag, g.bp_rp
        FROM vista.sources AS s
        JOIN vista.sources_x_gaia AS x ON x.masterObjID = s.sourceID
        JOIN gaia.sources AS g ON g.source_id = x.slaveObjID
        WHERE x.best_neighbour = 1 AND x.ambiguous = 0 AND s.ksAperMag3 &lt; 14
        ORDER BY ks
    </meta>

    <meta name="_example" title="VPHAS+ stars without a Gaia counterpart">
      A neighbour table records pairs only, so the sources with no Gaia
      source within the radius are those without a row: here the stellar
      VPHAS+ sources that Gaia does not see, brightest first:

      .. tapquery::

        SELECT TOP 100 s.sourceID, s.ra, s.dec, s.gAperMag3, s.iAperMag3, s.rAperMag3 AS r
        FROM vst.sources AS s
        LEFT OUTER JOIN vst.sources_x_gaia AS x ON x.masterObjID = s.sourceID
        WHERE x.masterObjID IS NULL AND s.mergedClass = -1 AND s.rAperMag3 IS NOT NULL
        ORDER BY r
    </meta>

    <meta name="_example" title="Which neighbour tables exist">
      Each survey lists its neighbour tables, what they pair and with which
      radius (joinCriterion in degrees, as in the VSA's RequiredNeighbours),
      and when they were built:

      .. tapquery::

        SELECT neighbourTable, masterTable, slaveTable, radius, nPairs, nMasters, built
        FROM vista.required_neighbours
    </meta>

    <meta name="_example" title="Members of the open cluster NGC 6791">
      Stars near NGC 6791 whose proper motions and parallaxes agree with the
      cluster's (pmra -0.42, pmdec -2.27 mas/yr):

      .. tapquery::

        SELECT source_id, ra, dec, parallax, pmra, pmdec, phot_g_mean_mag, bp_rp
        FROM gaia.sources
        WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 290.2208, 37.7717, 0.15))
          AND pmra BETWEEN -0.9 AND 0.1 AND pmdec BETWEEN -2.8 AND -1.8
          AND parallax &lt; 0.6
    </meta>

    <meta name="_example" title="Source counts per HEALPix cell">
      source_id encodes the nested HEALPix level-12 index (source_id / 2^35);
      the ``healpix12`` column holds it, and dividing by 4^(12-k) gives level k.
      Source density per level-8 cell (about 0.05 square degrees):

      .. tapquery::

        SELECT healpix8, COUNT(*) AS n, AVG(phot_g_mean_mag) AS mean_g
        FROM (
          SELECT healpix12/256 AS healpix8, phot_g_mean_mag FROM gaia.sources
        ) AS cells
        GROUP BY healpix8
        ORDER BY n DESC
    </meta>
  </STREAM>

  <NXSTREAM id="tapdescription">
    <meta name="description">The \\getConfig{web}{sitename}'s TAP end point.
      The Table Access Protocol (TAP) lets you run ADQL queries against the
      data centre's tables (the Gaia-like reference catalogue, survey images
      and source catalogues), inspect their metadata, and upload your own
      tables to join with them.

      Tables exposed through this endpoint include: \\tablesForTAP.
    </meta>
  </NXSTREAM>
</resource>
