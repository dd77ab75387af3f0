<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The raw frames of an imaging survey in TAP and ObsCore (calib_level 0), as
  a stream that a survey's RD feeds:

    <FEED source="common/rawframes#rawFrames" survey="vista" surveyName="VVV"/>

  The rows come from the raw files' own headers (casuvo.dachs.rawframes). -->
<resource schema="dc" resdir="common">
  <STREAM id="rawFrames">
    <doc>
      Table raw (one row per raw science exposure)
      and its import (importRaw).  Macros: survey (the collection, vista or
      vst), surveyName (VVV, VPHAS+).
    </doc>
    <table id="raw" onDisk="True" adql="True">
      <meta name="title">\surveyName raw frames</meta>
      <meta name="description">One row per raw science exposure of the
        \surveyName survey as it came from the telescope (all detectors in
        one multi-extension file), published in ObsCore with calib_level 0,
        with its pointing and a rough footprint (the circle holding the
        camera's detectors).  Calibration frames have no sky position and
        are not listed.</meta>
      <meta name="table-rank">70</meta>
      <mixin>//products#table</mixin>
      <mixin
        productType="'image'"
        productSubtype="kind"
        calibLevel="0"
        collectionName="'\surveyName'"
        targetName="object"
        expTime="exptime"
        facilityName="facility"
        instrumentName="instrument"
        title="title"
        ra="ra"
        dec="dec"
        fov="fov"
        coverage="coverage"
        tMin="mjd_obs"
        tMax="mjd_obs + exptime / 86400."
        emMin="em_min"
        emMax="em_max"
        oUCD="'phot.count'"
        preview="NULL"
        >//obscore#publish</mixin>
      <column name="kind" type="text" ucd="meta.code.class" tablehead="Kind"
        verbLevel="1" description="Kind of raw frame (science)."/>
      <column name="band" type="text" ucd="instr.filter" tablehead="Filter"
        verbLevel="1" description="Filter (band) name."/>
      <column name="night" type="integer" ucd="time.epoch;obs.night" required="True"
        tablehead="Night" verbLevel="1"
        description="Night of observation (YYYYMMDD, evening date)."/>
      <column name="mjd_obs" type="double precision" unit="d"
        ucd="time.start;obs.exposure" tablehead="MJD" verbLevel="1"
        description="Start of the exposure (MJD, UTC)."/>
      <column name="exptime" type="real" unit="s" ucd="time.duration;obs.exposure"
        tablehead="Exp. time" verbLevel="1" description="Exposure time."/>
      <column name="object" type="text" ucd="meta.id;obs.field" tablehead="Field"
        verbLevel="5" description="Survey field (OBJECT)."/>
      <column name="obs_id" type="bigint" ucd="meta.id;obs" tablehead="OB id"
        verbLevel="5" description="ESO observation block (HIERARCH ESO OBS ID).">
        <values nullLiteral="-1"/>
      </column>
      <column name="airmass" type="real" ucd="obs.airMass" verbLevel="10"
        description="Airmass at the start of the exposure."/>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra"
        verbLevel="5" description="Pointing, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec"
        verbLevel="5" description="Pointing, ICRS."/>
      <column name="fov" type="double precision" unit="deg"
        ucd="phys.angSize;instr.fov" verbLevel="15"
        description="Diameter of the circle holding all detectors."/>
      <column name="coverage" type="spoly" unit="deg" ucd="pos.outline;obs.field"
        verbLevel="15" description="Rough footprint (12-gon around the pointing)."/>
      <column name="em_min" type="double precision" unit="m" ucd="em.wl;stat.min"
        verbLevel="15" description="Band lower limit."/>
      <column name="em_max" type="double precision" unit="m" ucd="em.wl;stat.max"
        verbLevel="15" description="Band upper limit."/>
      <column name="instrument" type="text" ucd="meta.id;instr" verbLevel="15"
        description="Instrument."/>
      <column name="facility" type="text" ucd="meta.id;instr.tel" verbLevel="15"
        description="Telescope."/>
      <column name="title" type="text" ucd="meta.title" verbLevel="15"
        description="Human-readable title."/>
      <index columns="night"/>
      <index columns="kind"/>
      <FEED source="common/shared#releaseDate"/>
      <FEED source="common/shared#releaseControl"/>
    </table>

    <data id="importRaw">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.rawframes"/>
          <code>
            yield from rawframes.raw_frame_rows(self.sourceToken)
          </code>
        </iterator>
        <rowfilter procDef="//products#define">
          <bind key="table">"\survey.raw"</bind>
          <bind key="accref">@accref</bind>
          <bind key="path">@accref</bind>
          <bind key="fsize">@file_size</bind>
          <bind key="mime">"image/fits"</bind>
          <bind key="preview">None</bind>
          <bind key="embargo">@release_date</bind>
          <bind key="owner">@owner_group</bind>
        </rowfilter>
      </embeddedGrammar>
      <make table="raw">
        <rowmaker idmaps="*"/>
      </make>
    </data>
  </STREAM>
</resource>
