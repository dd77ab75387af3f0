<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  Pieces shared by casuvo's resource descriptors (published nowhere itself). -->
<resource schema="dc" resdir="common">
  <STREAM id="scsCoreDescs">
    <doc>
      The condDescs of a Simple Cone Search service, as //scs#coreDescs, but
      with the SCS parameters range-checked: RA in [0, 360], DEC in [-90, 90],
      SR in [0, 10] degrees (wider cones belong in TAP), and the web form's
      position and radius (at most 600 arcminutes).  Out-of-range values
      are usage errors, answered with the SCS error document (or the form
      with its message) and HTTP 400.
    </doc>
    <!-- the web form's position and radius, checked before DaCHS resolves
      the position (casuvo.dachs.pages, casuvo.dachs.params) -->
    <condDesc combining="True">
      <phraseMaker>
        <setup imports="casuvo.dachs.pages,casuvo.dachs.params"/>
        <code>
          pages.check_form_position(inPars, "hscs_pos")
          params.check_form_radius(inPars, "hscs_sr")
          return
          yield
        </code>
      </phraseMaker>
    </condDesc>
    <condDesc original="//scs#humanInput"/>
    <condDesc required="True">
      <inputKey name="RA" type="double precision" unit="deg" ucd="pos.eq.ra"
        description="Right Ascension (ICRS decimal)" tablehead="Alpha (ICRS)"
        multiplicity="single" std="True">
        <property name="onlyForRenderer">scs.xml</property>
      </inputKey>
      <inputKey name="DEC" type="double precision" unit="deg" ucd="pos.eq.dec"
        description="Declination (ICRS decimal)" tablehead="Delta (ICRS)"
        multiplicity="single" std="True">
        <property name="onlyForRenderer">scs.xml</property>
      </inputKey>
      <inputKey name="SR" type="real" unit="deg" description="Search radius"
        multiplicity="single" tablehead="Search Radius" std="True">
        <property name="onlyForRenderer">scs.xml</property>
      </inputKey>
      <phraseMaker>
        <setup original="//scs#scsSetup"/>
        <code>
          from casuvo.dachs.params import check_cone
          check_cone(inPars)
          yield genQuery(core.queriedTable, inPars, outPars)
        </code>
      </phraseMaker>
    </condDesc>
  </STREAM>
</resource>
