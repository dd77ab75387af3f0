<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The archive of a spectroscopic survey (Gaia-ESO, WEAVE, 4MOST): observing
  blocks, targets, spectra, per-OB products and raw exposures in TAP and
  ObsCore, SSA 1.1, SODA (BAND, FORMAT) and DataLink.  Fed into
  resdir/ges/q.rd, resdir/weave/q.rd and resdir/fourmost/q.rd; published
  nowhere itself.  The tables are imported from the index tables the
  survey's pipeline writes (docs/spectroscopy.md), through
  casuvo.dachs.spectra. -->
<resource schema="dc" resdir="common">

  <STREAM id="spectroscopicArchive">
    <doc>
      The resource metadata, tables, import and services of one
      spectroscopic survey's archive.  Macros: survey (the collection:
      schema, products directory, ges, weave or fourmost), surveyName (the
      survey's name: Gaia-ESO, WEAVE, 4MOST), instrument, facility,
      fluxUnit (VOUnit of the products' flux), fluxCalib (ABSOLUTE,
      RELATIVE or UNCALIBRATED), fibre (fibre aperture on the sky,
      degrees), testRA, testDec (a position with spectra).
    </doc>
    <meta name="title">casuvo \surveyName (\instrument) spectroscopic archive</meta>
    <meta name="coverage.waveband">Optical</meta>
    <meta name="instrument">\instrument</meta>
    <meta name="facility">\facility</meta>
    <meta name="productType">spectrum</meta>
    <meta name="ssap.dataSource">survey</meta>
    <meta name="ssap.creationType">archival</meta>
    <meta name="ssap.testQuery">POS=\testRA,\testDec&amp;SIZE=0.1</meta>

    <table id="obs_blocks" onDisk="True" adql="True" primary="ob_id">
      <meta name="title">\surveyName observing blocks</meta>
      <meta name="description">One row per \surveyName observing block (OB):
        its identity, night, templates, instrument mode, fibre allocation,
        survey fields, author, trimester, status, pointing, observing
        conditions, setting and, once processed, the median S/N and the
        per-OB product (the OB progress monitor's table).</meta>
      <meta name="table-rank">30</meta>
      <column name="ob_id" type="bigint" ucd="meta.id;obs" required="True"
        tablehead="OB id" verbLevel="1" description="Observing block identifier."/>
      <column name="ob_name" type="text" ucd="meta.id;obs" tablehead="OB name"
        verbLevel="1" description="Observing block name."/>
      <column name="field" type="text" ucd="meta.id;obs.field" tablehead="Field"
        verbLevel="1" description="Survey field the OB observes."/>
      <column name="night" type="integer" ucd="time.epoch;obs.night"
        tablehead="Night" verbLevel="1"
        description="Night of observation (YYYYMMDD, evening date).">
        <values nullLiteral="-1"/>
      </column>
      <column name="mjd_obs" type="double precision" unit="d"
        ucd="time.start;obs.exposure" tablehead="MJD" verbLevel="5"
        description="Start of the OB's first exposure (MJD, UTC)."/>
      <column name="proc_template" type="text" ucd="meta.code;obs.proposal"
        tablehead="Proc. template" verbLevel="5"
        description="Processing template (PROGTEMP-like code)."/>
      <column name="obs_template" type="text" ucd="meta.code;obs"
        tablehead="Obs. template" verbLevel="5"
        description="Observing template (OBSTEMP-like code)."/>
      <column name="mode" type="text" ucd="instr.setup" tablehead="Mode"
        verbLevel="1" description="Resolution mode: LR (low) or HR (high)."/>
      <column name="binning" type="smallint" ucd="instr.param" tablehead="Binning"
        verbLevel="10" description="Detector binning.">
        <values nullLiteral="-1"/>
      </column>
      <column name="made" type="text" ucd="instr.setup" tablehead="Mode/binning"
        verbLevel="10" description="Mode and binning as the monitor shows them
          (e.g. LR MOS (1))."/>
      <column name="n_targets" type="integer" ucd="meta.number;src"
        tablehead="Targets" verbLevel="1" description="Objects allocated fibres.">
        <values nullLiteral="-1"/>
      </column>
      <column name="n_sky" type="integer" ucd="meta.number" tablehead="Sky"
        verbLevel="5" description="Sky fibres allocated.">
        <values nullLiteral="-1"/>
      </column>
      <column name="n_unallocated" type="integer" ucd="meta.number"
        tablehead="Unallocated" verbLevel="10" description="Fibres not allocated.">
        <values nullLiteral="-1"/>
      </column>
      <column name="srv1" type="text" ucd="meta.id;obs.proposal" tablehead="Survey 1"
        verbLevel="10" description="First survey/programme field."/>
      <column name="srv2" type="text" ucd="meta.id;obs.proposal" tablehead="Survey 2"
        verbLevel="10" description="Second survey/programme field."/>
      <column name="srv3" type="text" ucd="meta.id;obs.proposal" tablehead="Survey 3"
        verbLevel="10" description="Third survey/programme field."/>
      <column name="author" type="text" ucd="meta.id.PI" tablehead="Author"
        verbLevel="10" description="Author of the OB (e-mail)."/>
      <column name="trimester" type="integer" ucd="time.epoch;obs.proposal"
        tablehead="Trimester" verbLevel="10" description="Observing trimester.">
        <values nullLiteral="-1"/>
      </column>
      <column name="status" type="text" ucd="meta.code.status" tablehead="Status"
        verbLevel="1" description="scheduled, observed, processed, completed or aborted.">
        <values><option>scheduled</option><option>observed</option>
          <option>processed</option><option>completed</option>
          <option>aborted</option></values>
      </column>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra;meta.main"
        tablehead="RA" verbLevel="1" description="Pointing, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec;meta.main"
        tablehead="Dec" verbLevel="1" description="Pointing, ICRS."/>
      <column name="airmass" type="real" ucd="obs.airMass" tablehead="Airmass"
        verbLevel="5" description="Mean airmass."/>
      <column name="seeing" type="real" unit="arcsec" ucd="instr.obsty.seeing"
        tablehead="Seeing" verbLevel="5" description="Seeing (FWHM)."/>
      <column name="exptime" type="real" unit="s" ucd="time.duration;obs.exposure"
        tablehead="Exp. time" verbLevel="5" description="Total exposure time."/>
      <column name="n_exposures" type="integer" ucd="meta.number;obs.exposure"
        tablehead="Exposures" verbLevel="10" description="Number of exposures.">
        <values nullLiteral="-1"/>
      </column>
      <column name="grating" type="text" ucd="instr.setup" tablehead="Grating"
        verbLevel="5" description="Grating."/>
      <column name="setting" type="text" ucd="instr.setup" tablehead="Setting"
        verbLevel="5" description="Instrument setting (e.g. HR10)."/>
      <column name="resolution" type="real" ucd="spect.resolution"
        tablehead="R" verbLevel="5" description="Resolving power λ/Δλ."/>
      <column name="em_min" type="double precision" unit="m" ucd="em.wl;stat.min"
        verbLevel="10" description="Shortest wavelength of the setting."/>
      <column name="em_max" type="double precision" unit="m" ucd="em.wl;stat.max"
        verbLevel="10" description="Longest wavelength of the setting."/>
      <column name="snr_median" type="real" ucd="stat.snr;stat.median"
        tablehead="S/N" verbLevel="5"
        description="Median S/N per pixel over the OB's objects (null until processed)."/>
      <column name="product_file" type="text" ucd="meta.ref;meta.file"
        tablehead="Product" verbLevel="10"
        description="Per-OB product, relative to the archive's inputs root (null
          when none)."/>
      <column name="release_date" type="timestamp" ucd="time.release"
        tablehead="Release" verbLevel="10" description="Date the OB's data become public."/>
      <FEED source="common/shared#releaseControl"/>
      <index columns="night"/>
      <index columns="status"/>
      <index columns="field"/>
    </table>

    <table id="targets" onDisk="True" adql="True">
      <meta name="title">\surveyName fibre allocations</meta>
      <meta name="description">One row per allocated fibre of a \surveyName
        OB: objects (with their Gaia source_id) and sky fibres, the fibre's
        status, the S/N reached and the object's spectrum.</meta>
      <meta name="table-rank">40</meta>
      <foreignKey inTable="obs_blocks" source="ob_id"/>
      <column name="ob_id" type="bigint" ucd="meta.id;obs" required="True"
        tablehead="OB id" verbLevel="1" description="Observing block (obs_blocks.ob_id)."/>
      <column name="fibre" type="integer" ucd="meta.id;instr.param" required="True"
        tablehead="Fibre" verbLevel="1" description="Fibre number."/>
      <column name="target_name" type="text" ucd="meta.id;src" tablehead="Name"
        verbLevel="1" description="The survey's object name (CNAME)."/>
      <column name="target_id" type="text" ucd="meta.id;src" tablehead="Target id"
        verbLevel="10" description="The survey's own target identifier."/>
      <column name="obj_type" type="text" ucd="src.class" tablehead="Type"
        verbLevel="1" description="OBJ (object) or SKY (sky fibre).">
        <values><option>OBJ</option><option>SKY</option></values>
      </column>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra;meta.main"
        tablehead="RA" verbLevel="1" description="Fibre position, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec;meta.main"
        tablehead="Dec" verbLevel="1" description="Fibre position, ICRS."/>
      <column name="mag_g" type="real" unit="mag" ucd="phot.mag;em.opt"
        tablehead="G" verbLevel="5" description="Gaia G magnitude of the object."/>
      <column name="source_id" type="bigint" ucd="meta.id.cross"
        tablehead="Gaia source" verbLevel="5"
        description="Gaia DR3-style source_id (gaia.sources); null for sky fibres.">
        <values nullLiteral="-1"/>
      </column>
      <column name="fibre_status" type="text" ucd="meta.code.status"
        tablehead="Fibre status" verbLevel="5" description="OK or DEAD.">
        <values><option>OK</option><option>DEAD</option></values>
      </column>
      <column name="snr" type="real" ucd="stat.snr" tablehead="S/N" verbLevel="5"
        description="Median S/N per pixel of the fibre's spectrum in this OB."/>
      <column name="spectrum_id" type="text" ucd="meta.id;meta.dataset"
        tablehead="Spectrum" verbLevel="5"
        description="The object's spectrum (spectra.spectrum_id); null for sky and dead fibres."/>
      <column name="release_date" type="timestamp" ucd="time.release"
        tablehead="Release" verbLevel="10" description="Date the fibre's OB becomes public (obs_blocks.release_date)."/>
      <FEED source="common/shared#releaseControl"/>
      <index columns="ob_id"/>
      <index columns="source_id"/>
      <index columns="spectrum_id"/>
      <index columns="target_name"/>
    </table>

    <table id="spectra_meta" onDisk="True" adql="hidden">
      <meta name="description">The per-object spectra as the pipeline indexes
        them, with the products-table columns; published as the SSA view
        \survey.spectra.</meta>
      <mixin>//products#table</mixin>
      <mixin>//ssap#plainlocation</mixin>
      <mixin>//ssap#simpleCoverage</mixin>
      <column name="spectrum_id" type="text" ucd="meta.id;meta.dataset;meta.main"
        tablehead="Spectrum" verbLevel="1" required="True"
        description="The spectrum's identifier (survey, object, setting)."/>
      <column name="obs_publisher_did" type="text" ucd="meta.ref.ivoid"
        tablehead="Dataset ID" verbLevel="1"
        description="IVOA publisher dataset identifier: the ID for DataLink and SODA."/>
      <column name="target_name" type="text" ucd="meta.id;src" tablehead="Name"
        verbLevel="1" description="The survey's object name (CNAME)."/>
      <column name="source_id" type="bigint" ucd="meta.id.cross"
        tablehead="Gaia source" verbLevel="5"
        description="Gaia DR3-style source_id of the object (gaia.sources).">
        <values nullLiteral="-1"/>
      </column>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra;meta.main"
        tablehead="RA" verbLevel="1" description="Object position, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec;meta.main"
        tablehead="Dec" verbLevel="1" description="Object position, ICRS."/>
      <column name="ob_id" type="bigint" ucd="meta.id;obs" tablehead="OB id"
        verbLevel="5" description="The OB of the newest epoch (obs_blocks.ob_id).">
        <values nullLiteral="-1"/>
      </column>
      <column name="n_epochs" type="smallint" ucd="meta.number;obs"
        tablehead="Epochs" verbLevel="5" description="Number of OBs combined.">
        <values nullLiteral="-1"/>
      </column>
      <column name="mode" type="text" ucd="instr.setup" tablehead="Mode"
        verbLevel="5" description="Resolution mode (LR, HR)."/>
      <column name="setting" type="text" ucd="instr.setup" tablehead="Setting"
        verbLevel="5" description="Instrument setting or arm."/>
      <column name="fibre" type="integer" ucd="meta.id;instr.param"
        tablehead="Fibre" verbLevel="10" description="Fibre in the newest OB.">
        <values nullLiteral="-1"/>
      </column>
      <column name="snr" type="real" ucd="stat.snr" tablehead="S/N" verbLevel="1"
        description="Median S/N per pixel."/>
      <column name="rv" type="real" unit="km/s" ucd="spect.dopplerVeloc.opt;src.veloc"
        tablehead="RV" verbLevel="1"
        description="Heliocentric radial velocity (cross-correlation with templates)."/>
      <column name="rv_error" type="real" unit="km/s" ucd="stat.error;spect.dopplerVeloc.opt"
        tablehead="RV error" verbLevel="1" description="Error of rv (1σ)."/>
      <column name="rv_template" type="text" ucd="meta.id;spect"
        tablehead="Template" verbLevel="10"
        description="Template of the best cross-correlation."/>
      <column name="em_min" type="double precision" unit="m" ucd="em.wl;stat.min"
        verbLevel="10" description="Shortest wavelength."/>
      <column name="em_max" type="double precision" unit="m" ucd="em.wl;stat.max"
        verbLevel="10" description="Longest wavelength."/>
      <column name="resolving_power" type="real" ucd="spect.resolution"
        tablehead="R" verbLevel="5" description="Resolving power λ/Δλ."/>
      <column name="t_min" type="double precision" unit="d" ucd="time.start;obs.exposure"
        verbLevel="10" description="Start of the first exposure (MJD)."/>
      <column name="t_max" type="double precision" unit="d" ucd="time.end;obs.exposure"
        verbLevel="10" description="End of the last exposure (MJD)."/>
      <column name="exptime" type="real" unit="s" ucd="time.duration;obs.exposure"
        tablehead="Exp. time" verbLevel="5" description="Total exposure time."/>
      <column name="file" type="text" ucd="meta.ref;meta.file" tablehead="File"
        verbLevel="10" description="Per-object product, relative to the inputs root."/>
      <column name="progenitors" type="text" ucd="meta.ref;meta.file"
        verbLevel="15"
        description="The per-OB products it came from, space-separated."/>
      <column name="file_size" type="bigint" unit="byte" ucd="phys.size;meta.file"
        verbLevel="15" description="Size of the product file.">
        <values nullLiteral="-1"/>
      </column>
      <column name="release_date" type="timestamp" ucd="time.release"
        tablehead="Release" verbLevel="10" description="Date the spectrum becomes public."/>
      <FEED source="common/shared#releaseControl"/>
      <column name="ssa_dateObs" original="//ssap#instance.ssa_dateObs"/>
      <column name="ssa_timeExt" original="//ssap#instance.ssa_timeExt"/>
      <column name="ssa_specstart" original="//ssap#instance.ssa_specstart"/>
      <column name="ssa_specend" original="//ssap#instance.ssa_specend"/>
      <column name="ssa_specres" original="//ssap#instance.ssa_specres"/>
      <column name="ssa_dstitle" original="//ssap#instance.ssa_dstitle"/>
      <column name="calib_level" type="smallint" ucd="meta.code;obs.calib"
        verbLevel="15" required="True"
        description="ObsCore calibration level: 2 for the spectrum of one OB, 3
          for one combined from several OBs (epochs)."/>
      <index columns="spectrum_id"/>
      <index columns="source_id"/>
      <index columns="ob_id"/>
      <index columns="target_name"/>
    </table>

    <table id="spectra" onDisk="True" adql="True">
      <meta name="title">\surveyName spectra</meta>
      <meta name="description">One row per \surveyName object spectrum (the
        SSA and SODA unit): the object, its Gaia source, S/N, radial
        velocity, wavelength range, resolving power, time and release
        date, with the SSA 1.1 metadata.  The access URL gives the spectrum
        as a Spectral Data Model VOTable; DataLink (obs_publisher_did) adds
        the survey's own file, a plot, SODA cutouts, the per-OB products, the
        Gaia source and the images at its position.</meta>
      <meta name="table-rank">20</meta>
      <meta name="_associatedDatalinkService">
        <meta name="serviceId">sdl</meta>
        <meta name="idColumn">obs_publisher_did</meta>
      </meta>
      <mixin
        sourcetable="spectra_meta"
        copiedcolumns="*"
        ssa_pubDID="obs_publisher_did"
        ssa_targname="target_name"
        ssa_snr="snr"
        ssa_aperture="\fibre"
        ssa_fluxunit="'\fluxUnit'"
        ssa_spectralunit="'Angstrom'"
        ssa_bandpass="'Optical'"
        ssa_collection="'\surveyName'"
        ssa_fluxcalib="'\fluxCalib'"
        ssa_fluxucd="'phot.flux.density;em.wl'"
        ssa_speccalib="'ABSOLUTE'"
        ssa_spectralucd="'em.wl'"
        ssa_targclass="'star'"
        ssa_instrument="'\instrument'"
        ssa_csysName="'ICRS'"
        ssa_targetpos="ssa_location"
        ssa_region="ssa_region"
      >//ssap#view</mixin>
      <mixin
        calibLevel="calib_level"
        coverage="ssa_region"
        collectionName="'\surveyName'"
        facilityName="'\facility'"
        instrumentName="'\instrument'"
        sResolution="\fibre*3600"
        oUCD="ssa_fluxucd"
        emUCD="ssa_spectralucd"
        tMin="t_min"
        tMax="t_max"
        expTime="exptime"
        emResPower="resolving_power"
        targetClass="'star'"
        preview="accref || '?preview=True'"
        >//obscore#publishSSAPMIXC</mixin>
    </table>

    <table id="ob_products" onDisk="True" adql="True">
      <meta name="title">\surveyName per-OB products</meta>
      <meta name="description">One row per \surveyName per-OB product file
        (all fibres of an OB, sky subtracted, flux calibrated, stacked over
        its exposures), published in ObsCore with calib_level 2; the
        per-object spectra link them as #progenitor.</meta>
      <meta name="table-rank">50</meta>
      <mixin>//products#table</mixin>
      <mixin
        productType="'spectrum'"
        productSubtype="'ob-product'"
        calibLevel="2"
        collectionName="'\surveyName'"
        targetName="field"
        expTime="exptime"
        facilityName="'\facility'"
        instrumentName="'\instrument'"
        title="title"
        ra="ra"
        dec="dec"
        tMin="mjd_obs"
        tMax="mjd_obs + exptime / 86400."
        emMin="em_min"
        emMax="em_max"
        emResPower="resolution"
        oUCD="'phot.flux.density;em.wl'"
        preview="NULL"
        >//obscore#publish</mixin>
      <column name="file" type="text" ucd="meta.id;meta.file" tablehead="File"
        verbLevel="1" description="Product file, relative to the inputs root."/>
      <column name="ob_id" type="bigint" ucd="meta.id;obs" tablehead="OB id"
        verbLevel="1" description="Observing block (obs_blocks.ob_id).">
        <values nullLiteral="-1"/>
      </column>
      <column name="field" type="text" ucd="meta.id;obs.field" verbLevel="5"
        description="Survey field."/>
      <column name="title" type="text" ucd="meta.title" verbLevel="15"
        description="Human-readable title."/>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra"
        verbLevel="5" description="OB pointing, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec"
        verbLevel="5" description="OB pointing, ICRS."/>
      <column name="mjd_obs" type="double precision" unit="d"
        ucd="time.start;obs.exposure" verbLevel="5" description="Start of the OB (MJD)."/>
      <column name="exptime" type="real" unit="s" ucd="time.duration;obs.exposure"
        verbLevel="5" description="Total exposure time."/>
      <column name="mode" type="text" ucd="instr.setup" verbLevel="5"
        description="Resolution mode."/>
      <column name="setting" type="text" ucd="instr.setup" verbLevel="5"
        description="Instrument setting."/>
      <column name="resolution" type="real" ucd="spect.resolution" verbLevel="10"
        description="Resolving power."/>
      <column name="em_min" type="double precision" unit="m" ucd="em.wl;stat.min"
        verbLevel="10" description="Shortest wavelength."/>
      <column name="em_max" type="double precision" unit="m" ucd="em.wl;stat.max"
        verbLevel="10" description="Longest wavelength."/>
      <column name="release_date" type="timestamp" ucd="time.release"
        tablehead="Release" verbLevel="10" description="Date the product becomes public (its OB's release date)."/>
      <FEED source="common/shared#releaseControl"/>
      <index columns="ob_id"/>
    </table>

    <table id="raw" onDisk="True" adql="True">
      <meta name="title">\surveyName raw exposures</meta>
      <meta name="description">One row per \surveyName raw exposure file
        (extracted fibre spectra in detector counts, per exposure and arm,
        not sky subtracted or flux calibrated), published in ObsCore with
        calib_level 0.</meta>
      <meta name="table-rank">60</meta>
      <mixin>//products#table</mixin>
      <mixin
        productType="'spectrum'"
        productSubtype="'raw'"
        calibLevel="0"
        collectionName="'\surveyName'"
        expTime="exptime"
        facilityName="'\facility'"
        instrumentName="'\instrument'"
        title="title"
        ra="ra"
        dec="dec"
        tMin="mjd_obs"
        tMax="mjd_obs + exptime / 86400."
        emMin="em_min"
        emMax="em_max"
        oUCD="'phot.count'"
        preview="NULL"
        >//obscore#publish</mixin>
      <column name="file" type="text" ucd="meta.id;meta.file" tablehead="File"
        verbLevel="1" description="Raw file, relative to the inputs root."/>
      <column name="ob_id" type="bigint" ucd="meta.id;obs" tablehead="OB id"
        verbLevel="1" description="Observing block (obs_blocks.ob_id).">
        <values nullLiteral="-1"/>
      </column>
      <column name="mjd_obs" type="double precision" unit="d"
        ucd="time.start;obs.exposure" verbLevel="1" description="Start of the exposure (MJD)."/>
      <column name="exptime" type="real" unit="s" ucd="time.duration;obs.exposure"
        verbLevel="1" description="Exposure time."/>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra"
        verbLevel="5" description="Pointing, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec"
        verbLevel="5" description="Pointing, ICRS."/>
      <column name="arm" type="text" ucd="instr.setup" verbLevel="5"
        description="Spectrograph arm or setting."/>
      <column name="em_min" type="double precision" unit="m" ucd="em.wl;stat.min"
        verbLevel="10" description="Shortest wavelength."/>
      <column name="em_max" type="double precision" unit="m" ucd="em.wl;stat.max"
        verbLevel="10" description="Longest wavelength."/>
      <column name="title" type="text" ucd="meta.title" verbLevel="15"
        description="Human-readable title."/>
      <column name="release_date" type="timestamp" ucd="time.release"
        tablehead="Release" verbLevel="10" description="Date the exposure becomes public (its OB's release date)."/>
      <FEED source="common/shared#releaseControl"/>
      <index columns="ob_id"/>
    </table>

    <data id="importObs">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.index_rows(self.sourceToken, "obs_blocks")
          </code>
        </iterator>
      </embeddedGrammar>
      <make table="obs_blocks"/>
    </data>

    <data id="importTargets">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.index_rows(self.sourceToken, "targets")
          </code>
        </iterator>
      </embeddedGrammar>
      <make table="targets"/>
    </data>

    <data id="importSpectra">
      <recreateAfter>makeSpectraView</recreateAfter>
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.spectrum_rows(self.sourceToken)
          </code>
        </iterator>
        <rowfilter procDef="//products#define">
          <bind key="table">"\survey.spectra_meta"</bind>
          <bind key="accref">@accref</bind>
          <bind key="path">@sdm_url</bind>
          <bind key="fsize">@sdm_size</bind>
          <bind key="mime">"application/x-votable+xml"</bind>
          <bind key="embargo">@release_date.date() if @release_date else None</bind>
          <bind key="owner">@owner_group</bind>
          <bind key="preview">@preview_url</bind>
          <bind key="preview_mime">"image/png"</bind>
          <bind key="datalink">"\survey/q#sdl"</bind>
        </rowfilter>
      </embeddedGrammar>
      <make table="spectra_meta">
        <rowmaker idmaps="*">
          <apply procDef="//ssap#fill-plainlocation">
            <bind key="ra">@ra</bind>
            <bind key="dec">@dec</bind>
            <bind key="aperture">\fibre</bind>
          </apply>
          <map key="obs_publisher_did">\\standardPubDID</map>
          <map key="ssa_dateObs">(@t_min + @t_max) / 2.</map>
          <map key="ssa_timeExt">@exptime</map>
          <map key="ssa_specstart">@em_min</map>
          <map key="ssa_specend">@em_max</map>
          <map key="ssa_specres">(@em_min + @em_max) / 2. / @resolving_power if @resolving_power else None</map>
          <map key="ssa_dstitle">"\surveyName %s %s" % (@target_name, @spectrum_id)</map>
          <map key="calib_level">3 if (@n_epochs or 1) > 1 else 2</map>
        </rowmaker>
      </make>
    </data>

    <data id="makeSpectraView" auto="False">
      <make table="spectra"/>
    </data>

    <data id="importObProducts">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.ob_product_rows(self.sourceToken)
          </code>
        </iterator>
        <rowfilter procDef="//products#define">
          <bind key="table">"\survey.ob_products"</bind>
          <bind key="accref">@accref</bind>
          <bind key="path">@accref</bind>
          <bind key="fsize">@file_size</bind>
          <bind key="mime">"application/fits"</bind>
          <bind key="embargo">@release_date.date() if @release_date else None</bind>
          <bind key="owner">@owner_group</bind>
          <bind key="preview">None</bind>
        </rowfilter>
      </embeddedGrammar>
      <make table="ob_products">
        <rowmaker idmaps="*"/>
      </make>
    </data>

    <data id="importRaw">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.raw_rows(self.sourceToken)
          </code>
        </iterator>
        <rowfilter procDef="//products#define">
          <bind key="table">"\survey.raw"</bind>
          <bind key="accref">@accref</bind>
          <bind key="path">@accref</bind>
          <bind key="fsize">@file_size</bind>
          <bind key="mime">"application/fits"</bind>
          <bind key="preview">None</bind>
          <bind key="embargo">@release_date.date() if @release_date else None</bind>
          <bind key="owner">@owner_group</bind>
        </rowfilter>
      </embeddedGrammar>
      <make table="raw">
        <rowmaker idmaps="*"/>
      </make>
    </data>

    <!-- A spectrum as a Spectral Data Model instance: wavelength, flux and
      its 1σ error, the SSA row's metadata as params. -->
    <table id="instance" onDisk="False">
      <meta name="description">A \surveyName spectrum: vacuum wavelength,
        flux and its 1σ error per sample.</meta>
      <mixin ssaTable="spectra"
        spectralDescription="Vacuum wavelength (heliocentric frame as the product states)"
        fluxDescription="Flux density"
        >//ssap#sdm-instance</mixin>
      <column name="flux_error" type="double precision"
        unit="\fluxUnit" ucd="stat.error;phot.flux.density;em.wl"
        utype="spec:Spectrum.Data.FluxAxis.Accuracy.StatError"
        description="1σ error of the flux"/>
    </table>

    <data id="buildSpectrum" auto="False">
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.sdm_rows(self.sourceToken["accref"])
          </code>
        </iterator>
      </embeddedGrammar>
      <make table="instance">
        <parmaker>
          <apply procDef="//ssap#feedSSAToSDM"/>
        </parmaker>
      </make>
    </data>

    <service id="sdl" allowed="dlget,dlmeta">
      <meta name="title">\surveyName spectrum DataLink and SODA</meta>
      <meta name="description">DataLink for every \surveyName spectrum (the
        SDM VOTable, the survey's own file, a plot, the per-OB products it
        came from, its Gaia source, the VISTA/VST images at its position)
        and SODA on it: BAND cutouts (metres, as in SSA), FORMAT (SDM
        VOTable, FITS, CSV, text, or a PNG plot).</meta>
      <meta name="dlget.description">SODA cutouts and format conversions of
        \surveyName spectra.</meta>
      <meta name="dlmeta.description">DataLink documents of \surveyName
        spectra.</meta>
      <datalinkCore>
        <descriptorGenerator procDef="//soda#sdm_genDesc">
          <bind key="ssaTD">"\survey/q#spectra"</bind>
        </descriptorGenerator>
        <metaMaker>
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            descriptor.suppressAutoLinks = True
            return
            yield
          </code>
        </metaMaker>
        <dataFunction procDef="//soda#sdm_genData">
          <bind key="builder">"\survey/q#buildSpectrum"</bind>
        </dataFunction>
        <dataFunction>
          <setup imports="casuvo.dachs.spectraparams"/>
          <code>
            spectraparams.check_soda(descriptor, args)
          </code>
        </dataFunction>
        <FEED source="//soda#sdm_cutout"/>
        <metaMaker>
          <setup imports="casuvo.dachs.spectraparams"/>
          <code>
            yield spectraparams.format_key()
          </code>
        </metaMaker>
        <dataFormatter>
          <setup imports="casuvo.dachs.spectraparams"/>
          <code>
            return spectraparams.format_spectrum(descriptor, args)
          </code>
        </dataFormatter>
        <metaMaker semantics="#auxiliary">
          <setup imports="casuvo.dachs.spectra"/>
          <code>
            yield from spectra.spectrum_links(descriptor, "\survey")
          </code>
        </metaMaker>
      </datalinkCore>
    </service>

    <service id="ssa" allowed="ssap.xml,form">
      <meta name="shortName">\surveyName SSA</meta>
      <meta name="title">\surveyName spectra, SSA 1.1</meta>
      <meta name="description">Simple Spectral Access 1.1 over the
        \surveyName object spectra (POS, SIZE, BAND, TIME, TARGETNAME, FORMAT,
        ...).  Each spectrum comes as a Spectral Data Model VOTable; its
        DataLink adds a plot, SODA cutouts, the per-OB products, the Gaia
        source and the images at its position.</meta>
      <meta name="ssap.complianceLevel">full</meta>
      <meta name="ssap.testQuery">POS=\testRA,\testDec&amp;SIZE=0.1</meta>
      <meta name="testQuery.pos.ra">\testRA</meta>
      <meta name="testQuery.pos.dec">\testDec</meta>
      <meta name="testQuery.size.ra">0.1</meta>
      <meta name="testQuery.size.dec">0.1</meta>
      <publish render="ssap.xml" sets="ivo_managed"/>
      <ssapCore queriedTable="spectra">
        <property key="previews">auto</property>
        <condDesc combining="True">
          <phraseMaker>
            <setup imports="casuvo.dachs.spectraparams"/>
            <code>
              spectraparams.check_ssa(inPars)
              spectraparams.size_is_diameter(inPars)
              return
              yield
            </code>
          </phraseMaker>
        </condDesc>
        <FEED source="//ssap#hcd_condDescs"/>
      </ssapCore>
    </service>

    <!-- Regression tests (`dachs test <survey>/q`): SSA finds spectra at the
      test position, DataLink, SODA BAND. -->
    <regSuite title="\survey spectroscopic archive: SSA, DataLink, SODA" sequential="True">
      <regTest title="\surveyName SSA finds spectra at the test position">
        <url POS="\testRA,\testDec" SIZE="0.1" REQUEST="queryData">ssa/ssap.xml</url>
        <code>
          rows = self.getVOTableRows()
          self.assertTrue(rows)
          self.assertEqual({r["ssa_collection"] for r in rows}, {"\surveyName"})
          self.followUp.url.freeAttrs = [("ID", rows[0]["ssa_pubDID"])]
        </code>
      </regTest>
      <regTest title="\surveyName DataLink of a spectrum">
        <url>sdl/dlmeta</url>
        <code>
          rows = self.getVOTableRows()
          self.assertEqual({r["error_message"] for r in rows}, {None})
          self.assertTrue({"#this", "#preview", "#cutout", "#progenitor"}
            &lt;= {r["semantics"] for r in rows})
        </code>
      </regTest>
    </regSuite>
  </STREAM>
</resource>
