<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  Pieces shared by casuvo's resource descriptors (published nowhere itself). -->
<resource schema="dc" resdir="common">
  <STREAM id="releaseControl">
    <doc>
      Who owns a table's rows and when they become public: the owner_group
      and release_date columns, and the row-level security policy that
      enforces them on every access path (casuvo.storage.access: before the
      release date only members of the owning group see a row, through TAP,
      ObsCore, SCS, SIA, SSA, DataLink, SODA, downloads and the pages).
      DaCHS re-creates the table on every import; the postCreation script
      protects it again each time.  The table declares release_date itself
      (a date or a timestamp), or FEEDs releaseDate.
    </doc>
    <column name="owner_group" type="text" ucd="meta.id"
      tablehead="Owner" verbLevel="25"
      description="Group (survey team) that owns the row before its release date."/>
    <script type="postCreation" lang="SQL" name="release control">
      SELECT casuvo.protect('\\qName')
    </script>
  </STREAM>

  <STREAM id="releaseDate">
    <doc>The release_date column of a table with release control (a date).</doc>
    <column name="release_date" type="date" unit="yr"
      ucd="time.release" tablehead="Release" verbLevel="10"
      description="Date the row becomes public; before it only its owner_group sees it."/>
  </STREAM>
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
