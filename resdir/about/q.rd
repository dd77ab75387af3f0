<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="about" resdir="about">
  <meta name="title">casuvo survey data centre: service limits</meta>
  <meta name="description">
    What the services of the casuvo survey data centre allow: the MAXREC
    defaults and hard limits of TAP, Cone Search, SIA and DataLink (a
    result cut at a limit is always flagged OVERFLOW), upload sizes, the
    size and complexity limits of ADQL queries, execution durations, how
    long async jobs are kept and how many run at once, and the widest cone.
  </meta>
  <meta name="creationDate">2026-12-03T00:00:00Z</meta>
  <meta name="subject">astronomical-databases</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Other</meta>

  <service id="limits" allowed="volatile,custom" customPage="res/limits_json">
    <meta name="shortName">casuvo limits</meta>
    <meta name="title">Service limits</meta>
    <meta name="description">Every limit the data centre's services enforce,
      for people (this page) and for scripts (the same as JSON, renderer
      custom): MAXREC defaults and hard limits, uploads, ADQL complexity,
      execution durations, the async job queue, the widest cone.</meta>
    <publish render="volatile" sets="local"/>
    <template key="volatile">//casuvo/limits.html</template>
    <FEED source="common/images#siteLook"/>
    <customRF name="limits">
      from casuvo.dachs import limitspage
      return limitspage.limits_body()
    </customRF>
    <nullCore/>
  </service>

  <regSuite title="casuvo limits page">
    <regTest title="the limits page lists the TAP hard MAXREC and the ADQL limits">
      <url>limits/volatile</url>
      <code>
        self.assertHTTPStatus(200)
        self.assertHasStrings('data-limit="tap.maxrec_hard"', 'data-limit="adql.max_length"')
      </code>
    </regTest>
    <regTest title="the limits as JSON">
      <url>limits/custom</url>
      <code>
        import json
        doc = json.loads(self.data)
        self.assertEqual(set(doc["tap"]["limits"]) &gt;= {"maxrec_default", "maxrec_hard"}, True)
      </code>
    </regTest>
  </regSuite>
</resource>
