<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="cutouts" resdir="cutouts">
  <meta name="title">casuvo bulk image cutouts</meta>
  <meta name="description">
    Many cutouts of the survey images as one asynchronous (UWS 1.1) job:
    upload a table of positions (VOTable or CSV with ra, dec in degrees
    ICRS, optionally size, the full width in degrees, and
    obs_publisher_did to name the image), optionally restricted to image
    collections and bands, and get every cutout of every image each
    position falls on, as the SODA service would cut it, as one FITS file
    per cutout, an index and one tar archive.  Jobs see what their owner
    may see: log in (HTTP basic) to cut proprietary images.
  </meta>
  <meta name="creationDate">2026-12-05T00:00:00Z</meta>
  <meta name="subject">sky-surveys</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Other</meta>

  <!-- The work is Python (casuvo.dachs.bulkcutouts); the job runs in a
    uwsrun child of the server, its cutouts on the Dask cluster in the
    compute environment (casuvo.imaging.bulkcutouts). -->
  <service id="bulk" allowed="async">
    <meta name="shortName">casuvo bulk cutouts</meta>
    <meta name="title">Bulk image cutouts (UWS)</meta>
    <meta name="description">Cutouts at many positions of many images in
      one UWS job.  POST positions (an uploaded VOTable or CSV: ra, dec,
      optional size and obs_publisher_did), COLLECTION and BAND (optional,
      repeatable) to async, then PHASE=RUN.  While the job executes, its
      result "progress" says how many cutouts are done; when it has
      completed, each cutout is a result (FITS), with index.csv and
      cutouts.tar (all of them).  Limits: see the service limits page.</meta>
    <publish render="async" sets="local"/>
    <pythonCore>
      <inputTable>
        <inputKey name="positions" type="file" required="True"
          description="Table of positions: VOTable or CSV with columns ra and dec
            (degrees, ICRS), optional size (full width; degrees, or the
            VOTable column's unit) and optional obs_publisher_did (cut
            only that image)."/>
        <inputKey name="collection" type="text" multiplicity="multiple"
          description="Cut only images of these collections (vista, vst, ...);
            default all image collections."/>
        <inputKey name="band" type="text" multiplicity="multiple"
          description="Cut only images in these bands (filtername, e.g. Ks);
            default all."/>
      </inputTable>
      <outputTable/>
      <coreProc>
        <setup imports="casuvo.dachs.bulkcutouts"/>
        <code>
          return bulkcutouts.run(service, inputTable)
        </code>
      </coreProc>
    </pythonCore>
  </service>

  <!-- Regression tests (`dachs test cutouts/q`, run by tests/integration/test_rd.py);
    the jobs themselves: tests/integration/test_bulk_cutouts.py. -->
  <regSuite title="bulk cutouts: the UWS">
    <regTest title="the bulk cutout job list is a UWS 1.1 job list">
      <url>bulk/async</url>
      <code>
        self.assertHTTPStatus(200)
        self.assertHasStrings("uws:jobs", 'version="1.1"')
      </code>
    </regTest>
  </regSuite>
</resource>
