<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The alerts of a survey's rapid mode (casuvo.jobs.rapid, `casuvo pipeline
  watch SURVEY`), as a stream that a survey's RD feeds (published nowhere itself):

    <FEED source="common/alerts#alerts" survey="vista" surveyName="VVV"/>

  The column order here must equal casuvo.jobs.rapid.ALERT_COLUMNS (the
  compute side writes the rows, `casuvo pipeline watch` COPYs them;
  tests/integration/test_alerts.py checks both). -->
<resource schema="dc" resdir="common">
  <NXSTREAM id="alerts">
    <doc>
      Table alerts (one row per alert: class, position, magnitudes, change,
      exposure, the VOEvent 2.0 packet), its data element (create_alerts) and
      a browsing form.  Macros: survey (the schema), surveyName.
    </doc>
    <table id="alerts" onDisk="True" adql="True" primary="ivorn">
      <meta name="description">Rapid-mode alerts of \surveyName: every new science
        exposure is calibrated as it lands (the night's masters, Gaia) and its
        detections compared with the catalogue of the field's latest earlier tile
        in the same band.  Classes: new (a point source the reference would have
        seen and did not, confirmed by a second exposure of the night), brightening
        and fading (a change of at least 0.3 mag and 5 sigma, the sigma from the
        errors and from the scatter of constant sources), fading also for a
        reference source gone below detection (mag from forced photometry), moving
        (a new source beside a vanished one).  Each row carries its VOEvent 2.0
        packet (column voevent).  Release control: an alert is visible when its
        exposure and reference are.</meta>
      <meta name="table-rank">40</meta>
      <column name="ivorn" type="text" required="True" ucd="meta.ref.ivoid;meta.main"
        tablehead="IVORN" verbLevel="1"
        description="IVORN of the alert's VOEvent (ivo://authority/survey/alerts#exposure-n)."/>
      <column name="kind" type="text" required="True" ucd="meta.code.class;src.var"
        tablehead="Class" verbLevel="1"
        description="new, brightening, fading or moving."/>
      <column name="ra" type="double precision" unit="deg" required="True"
        ucd="pos.eq.ra;meta.main" verbLevel="1"
        description="Right ascension (ICRS) where the exposure measured the source (the
          reference position for a source gone below detection)."/>
      <column name="dec" type="double precision" unit="deg" required="True"
        ucd="pos.eq.dec;meta.main" verbLevel="1" description="Declination (ICRS)."/>
      <column name="mag" type="double precision" unit="mag" ucd="phot.mag"
        verbLevel="1" description="Aperture magnitude (1 arcsec radius) in the exposure,
          on the reference's scale (Vega); forced photometry for a vanished source."/>
      <column name="mag_err" type="double precision" unit="mag"
        ucd="stat.error;phot.mag" verbLevel="5" description="Its error."/>
      <column name="ref_mag" type="double precision" unit="mag" ucd="phot.mag"
        verbLevel="5" description="The reference tile's magnitude (NULL for a new source)."/>
      <column name="ref_mag_err" type="double precision" unit="mag"
        ucd="stat.error;phot.mag" verbLevel="5" description="Its error."/>
      <column name="delta_mag" type="double precision" unit="mag"
        ucd="phot.mag;arith.diff" verbLevel="1"
        description="mag - ref_mag (for a new source: how far it is above the reference's
          5-sigma limit, as a positive number; for a vanished one: how far the
          reference magnitude is above the exposure's limit)."/>
      <column name="significance" type="double precision" ucd="stat.snr"
        verbLevel="5" description="delta_mag in standard deviations (NULL for a source
          that appeared or vanished)."/>
      <column name="exposure" type="text" required="True" ucd="meta.id;obs"
        verbLevel="5" description="The raw exposure alerted on."/>
      <column name="mjd_obs" type="double precision" unit="d" required="True"
        ucd="time.start;obs.exposure" verbLevel="1"
        description="Start of the exposure (MJD, UTC)."/>
      <column name="band" type="text" required="True" ucd="instr.filter"
        verbLevel="1" description="Filter."/>
      <column name="field" type="text" required="True" ucd="meta.id;obs.field"
        verbLevel="5" description="Survey field (OBJECT)."/>
      <column name="reference" type="text" required="True" ucd="meta.ref"
        verbLevel="10" description="The reference tile catalogue compared with."/>
      <column name="voevent" type="text" required="True" ucd="meta.code"
        verbLevel="30" description="The alert's VOEvent 2.0 packet (XML)."/>
      <FEED source="common/shared#releaseControl"/>
      <FEED source="common/shared#releaseDate"/>
      <index columns="mjd_obs"/>
    </table>

    <!-- Creates the (empty) table and its metadata; `casuvo pipeline watch \survey`
      fills it. -->
    <data id="create_alerts">
      <make table="alerts"/>
    </data>

    <service id="browse" allowed="form">
      <meta name="shortName">\survey alerts</meta>
      <meta name="title">casuvo \surveyName rapid-mode alerts</meta>
      <meta name="description">The rapid-mode alerts of \surveyName (new sources,
        brightening, fading, moving) with their VOEvent IVORNs; the packets are in
        the voevent column of \survey.alerts (TAP).</meta>
      <dbCore queriedTable="alerts">
        <condDesc buildFrom="kind"/>
        <condDesc buildFrom="band"/>
        <condDesc buildFrom="mjd_obs"/>
      </dbCore>
      <outputTable verbLevel="20"/>
      <publish render="form" sets="local"/>
    </service>

    <regSuite title="\survey alerts">
      <regTest title="\survey.alerts has the columns the compute side writes">
        <url parSet="TAP" QUERY="SELECT TOP 1 ivorn, kind, ra, dec, mag, delta_mag,
          mjd_obs, band FROM \survey.alerts">/tap/sync</url>
        <code>
          self.assertHasStrings('name="ivorn"', 'name="kind"', 'name="delta_mag"')
        </code>
      </regTest>
    </regSuite>
  </NXSTREAM>
</resource>
