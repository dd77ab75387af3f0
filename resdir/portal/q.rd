<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The spectroscopic archives' web pages (the Gaia-ESO archive and 4MOST
  operational repository pages of the data centre): home, OB progress
  monitor, one OB, object search with spectrum plots, raw data (ObsCore calib_level 0),
  my data (a logged-in user's proprietary products and TAP jobs), processing status
  (imaging and spectroscopy, from the ledger) and help.  No tables of its
  own: the pages read the collections' obs_blocks, targets and spectra
  tables (the registry's spectroscopic surveys) and ledger.runs/products,
  through casuvo.dachs.spectropages.  Every page is made in its core, before
  anything is sent: a bad parameter is a 400 naming it. -->
<resource schema="portal" resdir="portal">
  <meta name="title">casuvo spectroscopic survey archives</meta>
  <meta name="description">
    Web pages of the spectroscopic survey archives: observing blocks night
    by night (the OB progress monitor), each OB with its targets and their
    spectra, objects by name or position with their spectra plotted, the
    processing status of every pipeline, and the data formats.
  </meta>
  <meta name="creationDate">2026-12-03T00:00:00Z</meta>
  <meta name="subject">spectroscopy</meta>
  <meta name="subject">astronomical-databases</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Archive</meta>

  <STREAM id="page">
    <doc>The template and look of a portal page, and its core; macro:
      page (the function of casuvo.dachs.spectropages drawing the body from
      the parsed parameters).  The body is made in the core, which DaCHS
      runs in a worker thread before anything is sent: a bad parameter
      (ValidationError) is a 400 page naming it, an unknown OB or spectrum
      a 404, and the database is never queried from the event loop.  FEED
      inside the service; the service's pythonCore FEEDs pageCore.</doc>
    <template key="volatile">//casuvo/portal.html</template>
    <FEED source="common/images#siteLook"/>
    <customRF name="portal">
      return self.queryMeta["casuvo.portal"]
    </customRF>
  </STREAM>

  <STREAM id="pageCore">
    <doc>The outputTable and coreProc of a portal page's pythonCore (macro
      page, as for the page stream); the inputTable comes first.</doc>
    <outputTable><outputField name="ok" type="text"/></outputTable>
    <coreProc>
      <code>
        from casuvo.dachs import spectropages
        queryMeta["casuvo.portal"] = spectropages.\page(inputTable.args)
        return rsc.TableForDef(self.outputTable, rows=[])
      </code>
    </coreProc>
  </STREAM>

  <service id="home" allowed="volatile">
    <meta name="shortName">spectra archive</meta>
    <meta name="title">Spectroscopic survey archives</meta>
    <meta name="description">Home of the spectroscopic archives: what
      they hold and quick links to the observations, objects, processing
      status, help and data formats.</meta>
    <publish render="volatile" sets="local"/>
    <property name="strictParameters">True</property>
    <FEED source="page"/>
    <pythonCore>
      <inputTable/>
      <FEED source="pageCore" page="home_args"/>
    </pythonCore>
  </service>

  <service id="monitor" allowed="volatile">
    <meta name="shortName">OB monitor</meta>
    <meta name="title">OB progress monitor</meta>
    <meta name="description">Every observing block of the spectroscopic
      surveys with its night, templates, mode, targets, programme, author,
      trimester and status; filter by survey, field, night, status and
      mode.</meta>
    <publish render="volatile" sets="local"/>
    <FEED source="page"/>
    <pythonCore>
      <inputTable>
        <inputKey name="survey" type="text" description="Survey key (ges, weave, fourmost)."/>
        <inputKey name="field" type="text" description="Survey field."/>
        <inputKey name="night" type="text" description="Night, YYYYMMDD."/>
        <inputKey name="status" type="text" description="OB status."/>
        <inputKey name="mode" type="text" description="LR or HR."/>
      </inputTable>
      <FEED source="pageCore" page="monitor_args"/>
    </pythonCore>
  </service>

  <service id="ob" allowed="volatile">
    <meta name="shortName">OB page</meta>
    <meta name="title">Observing block</meta>
    <meta name="description">One observing block: pointing, file, date,
      exposure time, airmass, seeing, grating, setting, resolution, the
      allocated objects and sky fibres and the targets with their
      spectra.</meta>
    <FEED source="page"/>
    <pythonCore>
      <inputTable>
        <inputKey name="survey" type="text" description="Survey key."/>
        <inputKey name="ob_id" type="text" description="OB number."/>
      </inputTable>
      <FEED source="pageCore" page="ob_args"/>
    </pythonCore>
  </service>

  <service id="objects" allowed="volatile">
    <meta name="shortName">object search</meta>
    <meta name="title">Search for objects</meta>
    <meta name="description">The spectra of an object, found by its name
      (CNAME or Gaia source_id) or position, each with a plot.</meta>
    <publish render="volatile" sets="local"/>
    <FEED source="page"/>
    <pythonCore>
      <inputTable>
        <inputKey name="survey" type="text" description="Survey key (any when empty)."/>
        <inputKey name="name" type="text" description="CNAME or Gaia source_id."/>
        <inputKey name="pos" type="text" description="RA,Dec (ICRS, degrees or sexagesimal)."/>
        <inputKey name="radius" type="text" description="Search radius, arcsec."/>
      </inputTable>
      <FEED source="pageCore" page="objects_args"/>
    </pythonCore>
  </service>

  <service id="raw" allowed="volatile">
    <meta name="shortName">raw data</meta>
    <meta name="title">Query for raw data</meta>
    <meta name="description">The raw exposures of every survey, imaging
      frames and spectroscopic count spectra, as ObsCore holds them
      (calib_level 0): by collection, kind, night and position, each with
      its file, and the ADQL of the same query.</meta>
    <publish render="volatile" sets="local"/>
    <FEED source="page"/>
    <pythonCore>
      <inputTable>
        <inputKey name="collection" type="text" description="ObsCore obs_collection."/>
        <inputKey name="kind" type="text" description="image or spectrum."/>
        <inputKey name="night" type="text" description="Night, YYYYMMDD (evening date)."/>
        <inputKey name="pos" type="text" description="RA,Dec (ICRS, degrees or sexagesimal)."/>
        <inputKey name="radius" type="text" description="Search radius, degrees."/>
      </inputTable>
      <FEED source="pageCore" page="raw_args"/>
    </pythonCore>
  </service>

  <service id="mydata" allowed="volatile">
    <meta name="shortName">my data</meta>
    <meta name="title">My data</meta>
    <meta name="description">For a logged-in survey-team member (HTTP
      basic authentication; the page asks for it): the proprietary
      products they may see before their release date, from every
      collection, and the TAP jobs they started.</meta>
    <publish render="volatile" sets="local"/>
    <property name="strictParameters">True</property>
    <FEED source="page"/>
    <pythonCore>
      <inputTable/>
      <FEED source="pageCore" page="mydata_args"/>
    </pythonCore>
  </service>

  <service id="processing" allowed="volatile">
    <meta name="shortName">processing status</meta>
    <meta name="title">Processing status</meta>
    <meta name="description">The pipeline runs of the imaging and
      spectroscopic surveys from the processing ledger: inputs, products
      made, failed and resumed, QC, failures with their messages, and the
      runs' logs.</meta>
    <publish render="volatile" sets="local"/>
    <FEED source="page"/>
    <pythonCore>
      <inputTable>
        <inputKey name="pipeline" type="text" description="Pipeline (survey key)."/>
      </inputTable>
      <FEED source="pageCore" page="processing_args"/>
    </pythonCore>
  </service>

  <service id="help" allowed="volatile">
    <meta name="shortName">archive help</meta>
    <meta name="title">Help: the spectroscopic data and formats</meta>
    <meta name="description">How to use the spectroscopic archives, and
      per survey its products, naming convention, file formats, error
      convention and tables.</meta>
    <publish render="volatile" sets="local"/>
    <property name="strictParameters">True</property>
    <FEED source="page"/>
    <pythonCore>
      <inputTable/>
      <FEED source="pageCore" page="help_args"/>
    </pythonCore>
  </service>

  <service id="plot" allowed="api">
    <meta name="title">Spectrum plot</meta>
    <meta name="description">A PNG plot of one spectrum (flux and its 1σ
      band) drawn from its product file.</meta>
    <pythonCore>
      <inputTable>
        <inputKey name="survey" type="text" required="True" description="Survey key."/>
        <inputKey name="spectrum_id" type="text" required="True"
          description="spectrum_id of the collection's spectra table."/>
      </inputTable>
      <outputTable><outputField name="ok" type="text"/></outputTable>
      <coreProc>
        <code>
          from casuvo.dachs import spectropages
          return spectropages.plot(inputTable.args)
        </code>
      </coreProc>
    </pythonCore>
  </service>

  <service id="log" allowed="api">
    <meta name="title">Pipeline run log</meta>
    <meta name="description">The log file of a pipeline run (text).</meta>
    <pythonCore>
      <inputTable>
        <inputKey name="run_id" type="text" required="True" description="Run id."/>
      </inputTable>
      <outputTable><outputField name="ok" type="text"/></outputTable>
      <coreProc>
        <code>
          from casuvo.dachs import spectropages
          return spectropages.run_log(inputTable.args)
        </code>
      </coreProc>
    </pythonCore>
  </service>

  <regSuite title="spectroscopic archive pages">
    <regTest title="the home page has the quick links">
      <url>home/volatile</url>
      <code>
        self.assertHTTPStatus(200)
        self.assertHasStrings('data-quick="monitor"', 'data-quick="objects"',
          'data-quick="processing"', 'data-quick="help"', 'data-quick="formats"')
      </code>
    </regTest>
    <regTest title="the OB monitor has the talk's columns">
      <url>monitor/volatile</url>
      <code>
        self.assertHTTPStatus(200)
        self.assertHasStrings("PROCTEMP", "OBSTEMP", "Made (binning)", "Trimester")
      </code>
    </regTest>
    <regTest title="the OB monitor refuses an unknown status with a 400 naming it">
      <url status="finished">monitor/volatile</url>
      <code>
        self.assertHTTPStatus(400)
        self.assertHasStrings("status")
      </code>
    </regTest>
    <regTest title="the processing page lists the runs of the ledger">
      <url>processing/volatile</url>
      <code>
        self.assertHTTPStatus(200)
        self.assertHasStrings('id="runs"', "Failures")
      </code>
    </regTest>
  </regSuite>
</resource>
