<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause
  The image archive of an imaging survey (VISTA, VST): image and ancillary
  product tables, ObsCore publication, SIA 2.0 and 1.0, DataLink and SODA.
  Fed into resdir/vista/q.rd and resdir/vst/q.rd; published nowhere itself. -->
<resource schema="dc" resdir="common">

  <STREAM id="siteLook">
    <doc>
      The data centre's look for a service rendered from the templates in
      services/templates/casuvo/: its stylesheet, header bar and footer
      (casuvo.dachs.pages).  FEED into every service with an archive page.
    </doc>
    <customRF name="sitestyle">
      from casuvo.dachs import pages
      return pages.site_style(tag)
    </customRF>
    <customRF name="sitebanner">
      from casuvo.dachs import pages
      return pages.site_banner(service)
    </customRF>
    <customRF name="sitefooter">
      from casuvo.dachs import pages
      return pages.site_footer()
    </customRF>
  </STREAM>

  <STREAM id="qcField">
    <doc>
      A QC column of the search results, rounded for the page
      (casuvo.dachs.pages.qc_value).  Macros: column, decimals.
    </doc>
    <outputField original="\column">
      <formatter>
        from casuvo.dachs import pages
        return pages.qc_value(data, "\column", \decimals)
      </formatter>
    </outputField>
  </STREAM>

  <STREAM id="imageArchive">
    <doc>
      The resource metadata, tables, import and services of one survey's
      image archive.  Macros (the survey registry's values, which
      tests/integration/test_rd.py checks): survey (the collection: schema,
      products directory and pipeline, vista or vst), surveyName (the
      registry's name: VVV, VPHAS+), instrument (the camera's name: VIRCAM,
      OMEGACAM), waveband (the registry's regime: Infrared, Optical),
      testRA, testDec (a position with images, for validators and the
      regression tests).
    </doc>
    <meta name="title">casuvo \surveyName (\instrument) image archive</meta>
    <meta name="coverage.waveband">\waveband</meta>
    <meta name="instrument">\instrument</meta>

    <table id="images" onDisk="True" adql="True">
      <meta name="title">\surveyName images (\instrument)</meta>
      <meta name="description">One row per published image: each detector
        of a stacked pawprint (a CASU multi-extension file) and each tile,
        with its footprint, observation time, band, QC (seeing, ellipticity,
        sky noise, zero point, depth, astrometric RMS) and the processing run
        that made it.  The image itself, its preview, cutouts, confidence map,
        catalogue, progenitors and processing record are linked through
        DataLink (obs_publisher_did).</meta>
      <meta name="table-rank">20</meta>
      <meta name="_associatedDatalinkService">
        <meta name="serviceId">dl</meta>
        <meta name="idColumn">obs_publisher_did</meta>
      </meta>
      <mixin>//siap#pgs</mixin>
      <mixin
        productType="'image'"
        calibLevel="calib_level"
        collectionName="'\surveyName'"
        targetName="object"
        expTime="totexptime"
        facilityName="facility"
        title="imageTitle"
        tMin="mjdobs"
        tMax="mjdend"
        emMin="bandpassLo"
        emMax="bandpassHi"
        sResolution="obsfwhm"
        oUCD="'phot.count'"
        >//obscore#publishSIAP</mixin>

      <column name="obs_publisher_did" type="text" ucd="meta.ref.ivoid"
        tablehead="Dataset ID" verbLevel="1"
        description="IVOA publisher dataset identifier of this image: the ID
          for DataLink and SODA."/>
      <column name="filename" type="text" ucd="meta.id;meta.file"
        tablehead="File" verbLevel="1"
        description="CASU product file holding the image (stacked pawprint
          v/oYYYYMMDD_NNNNN_st.fit or tile ..._st_tl.fit)."/>
      <column name="extnum" type="smallint" ucd="meta.number"
        tablehead="Ext." verbLevel="1" required="True"
        description="FITS extension of the image in filename (the detector
          of a pawprint; 1 for a tile)."/>
      <column name="extname" type="text" ucd="meta.id;instr.det"
        tablehead="Detector" verbLevel="15"
        description="EXTNAME of the extension (detector name)."/>
      <column name="imagetype" type="text" ucd="meta.code.class"
        tablehead="Type" verbLevel="1"
        description="pawprint (one detector of a stacked pawprint) or tile.">
        <values><option>pawprint</option><option>tile</option></values>
      </column>
      <column name="coords" type="text" ucd="pos.eq;meta.main"
        tablehead="Centre" verbLevel="1"
        description="Image centre, sexagesimal ICRS (hh:mm:ss.ss
          +dd:mm:ss.s)."/>
      <column name="filtername" type="text" ucd="instr.filter"
        tablehead="Filter" verbLevel="1"
        description="Filter (band) name."/>
      <column name="surveyname" type="text" ucd="meta.id;obs.field"
        tablehead="Survey" verbLevel="1" description="Survey programme."/>
      <column name="object" type="text" ucd="meta.id;src"
        tablehead="Field" verbLevel="5"
        description="Survey field (OBJECT keyword)."/>
      <column name="instrument" type="text" ucd="meta.id;instr"
        verbLevel="15" description="Instrument."/>
      <column name="facility" type="text" ucd="meta.id;instr.tel"
        verbLevel="15" description="Telescope."/>
      <column name="nightobs" type="integer" ucd="time.epoch;obs.night" required="True"
        tablehead="Night" verbLevel="1"
        description="Night of observation (YYYYMMDD, local date at the start
          of the night)."/>
      <column name="mjdobs" type="double precision" unit="d"
        ucd="time.start;obs.exposure" tablehead="MJD start" verbLevel="5"
        description="Start of the first contributing exposure (MJD, UTC)."/>
      <column name="mjdend" type="double precision" unit="d"
        ucd="time.end;obs.exposure" tablehead="MJD end" verbLevel="5"
        description="End of the last contributing exposure (MJD, UTC)."/>
      <column name="totexptime" type="real" unit="s"
        ucd="time.duration;obs.exposure" tablehead="Total exp." verbLevel="1"
        description="Total exposure time of all contributing exposures."/>
      <column name="exptime" type="real" unit="s"
        ucd="time.duration;obs.exposure" tablehead="Exp./pixel" verbLevel="10"
        description="Effective exposure time per pixel."/>
      <column name="obsfwhm" type="real" unit="arcsec"
        ucd="phys.angSize;instr.obsty.seeing" tablehead="Seeing" verbLevel="1"
        description="Seeing: median FWHM of stellar images in this image."/>
      <column name="ellipticity" type="real" ucd="src.ellipticity"
        tablehead="Ell." verbLevel="5"
        description="Median ellipticity of stellar images."/>
      <column name="skylevel" type="real" unit="adu" ucd="instr.skyLevel"
        verbLevel="15" description="Median sky level after sky subtraction."/>
      <column name="skynoise" type="real" unit="adu" ucd="stat.stdev;instr.skyLevel"
        tablehead="Sky noise" verbLevel="5"
        description="Sky noise (robust RMS per pixel)."/>
      <column name="magzpt" type="real" unit="mag" ucd="phot.mag;phot.calib;arith.zp"
        tablehead="ZP" verbLevel="5"
        description="Photometric zero point (Vega, 1 s, airmass 1; CASU MAGZPT)."/>
      <column name="magzrr" type="real" unit="mag" ucd="stat.error;phot.calib"
        verbLevel="15" description="Error of the zero point (MAGZRR)."/>
      <column name="abmaglim" type="real" unit="mag"
        ucd="phot.mag;stat.max" tablehead="Depth (AB)" verbLevel="5"
        description="5 sigma point-source limiting magnitude, AB (ABMAGLIM)."/>
      <column name="astrms" type="real" unit="arcsec" ucd="stat.stdev;pos"
        verbLevel="15"
        description="RMS of the astrometric fit against Gaia (STDCRMS)."/>
      <column name="obstatus" type="text" ucd="meta.code.status"
        tablehead="OB status" verbLevel="1"
        description="Status of the observation block (OBSTATUS)."/>
      <column name="qcstatus" type="text" ucd="meta.code.qual"
        tablehead="QC" verbLevel="1"
        description="Quality control verdict against the survey thresholds
          (pass, fail).">
        <values><option>pass</option><option>fail</option></values>
      </column>
      <column name="calib_level" type="smallint" ucd="meta.code;obs.calib" required="True"
        verbLevel="15"
        description="ObsCore calibration level: 2 for stacked pawprints,
          3 for tiles (mosaics)."/>
      <column name="ncombine" type="smallint" ucd="meta.number;obs" required="True"
        verbLevel="15" description="Number of exposures combined."/>
      <column name="confname" type="text" ucd="meta.id;meta.file"
        verbLevel="15" description="Confidence map of this image (file name)."/>
      <column name="catname" type="text" ucd="meta.id;meta.file"
        verbLevel="15" description="Source catalogue of this image (file name)."/>
      <column name="run_id" type="text" ucd="meta.id;meta.dataset"
        tablehead="Run" verbLevel="10"
        description="Processing run that made the product (casuvo ledger)."/>
      <column name="release_date" type="date" unit="yr"
        ucd="time.release" tablehead="Release" verbLevel="10"
        description="Date the image becomes public (one year after the
          night, ESO's proprietary period, unless the survey extends it)."/>
      <FEED source="common/shared#releaseControl"/>
    </table>

    <table id="ancillary" onDisk="True" adql="True">
      <meta name="title">\surveyName ancillary products</meta>
      <meta name="description">Confidence maps and source catalogues of the
        \surveyName images, one row per file (all detectors of a pawprint
        in one multi-extension file), published in ObsCore.</meta>
      <meta name="table-rank">40</meta>
      <mixin>//products#table</mixin>
      <mixin
        productType="prodtype"
        productSubtype="prodsubtype"
        calibLevel="calib_level"
        collectionName="'\surveyName'"
        targetName="object"
        expTime="totexptime"
        facilityName="facility"
        instrumentName="instrument"
        title="title"
        ra="ra"
        dec="dec"
        fov="fov"
        coverage="footprint"
        tMin="mjdobs"
        tMax="mjdend"
        emMin="em_min"
        emMax="em_max"
        oUCD="NULL"
        preview="NULL"
        >//obscore#publish</mixin>
      <column name="filename" type="text" ucd="meta.id;meta.file"
        tablehead="File" verbLevel="1" description="Product file name."/>
      <column name="image" type="text" ucd="meta.id;meta.file"
        tablehead="Image" verbLevel="1"
        description="The science image (file name) this product belongs to."/>
      <column name="prodcatg" type="text" ucd="meta.code.class"
        tablehead="Category" verbLevel="1"
        description="ESO product category (ANCILLARY.WEIGHTMAP,
          SCIENCE.SRCTBL)."/>
      <column name="prodtype" type="text" ucd="meta.code.class"
        verbLevel="15" description="ObsCore dataproduct_type."/>
      <column name="prodsubtype" type="text" ucd="meta.code.class"
        verbLevel="15" description="ObsCore dataproduct_subtype."/>
      <column name="title" type="text" ucd="meta.title" verbLevel="15"
        description="Human-readable title."/>
      <column name="object" type="text" ucd="meta.id;src" verbLevel="5"
        description="Survey field."/>
      <column name="filtername" type="text" ucd="instr.filter" verbLevel="1"
        description="Filter (band) name."/>
      <column name="instrument" type="text" ucd="meta.id;instr" verbLevel="15"
        description="Instrument."/>
      <column name="facility" type="text" ucd="meta.id;instr.tel" verbLevel="15"
        description="Telescope."/>
      <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra"
        verbLevel="5" description="Centre of the covered field, ICRS."/>
      <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec"
        verbLevel="5" description="Centre of the covered field, ICRS."/>
      <column name="fov" type="double precision" unit="deg"
        ucd="phys.angSize;instr.fov" verbLevel="15"
        description="Diameter of the circle enclosing all detectors."/>
      <column name="footprint" type="spoly" unit="deg" ucd="pos.outline;obs.field"
        verbLevel="15" description="Convex outline of all detectors."/>
      <column name="mjdobs" type="double precision" unit="d"
        ucd="time.start;obs.exposure" verbLevel="15"
        description="Start of the first contributing exposure (MJD)."/>
      <column name="mjdend" type="double precision" unit="d"
        ucd="time.end;obs.exposure" verbLevel="15"
        description="End of the last contributing exposure (MJD)."/>
      <column name="totexptime" type="real" unit="s"
        ucd="time.duration;obs.exposure" verbLevel="15"
        description="Total exposure time."/>
      <column name="em_min" type="double precision" unit="m"
        ucd="em.wl;stat.min" verbLevel="15" description="Band lower limit."/>
      <column name="em_max" type="double precision" unit="m"
        ucd="em.wl;stat.max" verbLevel="15" description="Band upper limit."/>
      <column name="calib_level" type="smallint" ucd="meta.code;obs.calib" required="True"
        verbLevel="15" description="ObsCore calibration level."/>
      <FEED source="common/shared#releaseDate"/>
      <FEED source="common/shared#releaseControl"/>
    </table>

    <data id="import">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.archive"/>
          <code>
            yield from archive.image_rows(self.sourceToken)
          </code>
        </iterator>
        <rowfilter procDef="//products#define">
          <bind key="table">"\survey.images"</bind>
          <bind key="accref">@accref</bind>
          <bind key="path">@path</bind>
          <bind key="fsize">@fsize</bind>
          <bind key="embargo">@release</bind>
          <bind key="owner">@owner_group</bind>
          <bind key="preview">@preview</bind>
          <bind key="preview_mime">"image/png"</bind>
        </rowfilter>
      </embeddedGrammar>
      <make table="images">
        <rowmaker idmaps="filename,extnum,extname,imagetype,coords,filtername,
            surveyname,object,instrument,facility,nightobs,mjdobs,mjdend,
            totexptime,exptime,obsfwhm,ellipticity,skylevel,skynoise,magzpt,
            magzrr,abmaglim,astrms,obstatus,qcstatus,calib_level,ncombine,
            confname,catname,run_id,owner_group">
          <apply procDef="//siap#computePGS"/>
          <apply procDef="//siap#setMeta">
            <bind key="title">@title</bind>
            <bind key="instrument">@instrument</bind>
            <bind key="dateObs">(@mjdobs + @mjdend) / 2.</bind>
            <bind key="bandpassId">@filtername</bind>
            <bind key="bandpassUnit">"m"</bind>
            <bind key="bandpassRefval">@wavelength_nm * 1e-9</bind>
            <bind key="bandpassLo">(@wavelength_nm - @width_nm / 2) * 1e-9</bind>
            <bind key="bandpassHi">(@wavelength_nm + @width_nm / 2) * 1e-9</bind>
          </apply>
          <map key="obs_publisher_did">\\standardPubDID</map>
          <map key="release_date">@release</map>
          <!-- the footprint from casuvo.sky.footprint (the grammar's row), not
            computePGS's own: one footprint for s_region, MOC and outlines -->
          <map key="coverage">@footprint</map>
        </rowmaker>
      </make>
    </data>

    <data id="importAncillary">
      <sources items="\survey"/>
      <embeddedGrammar>
        <iterator>
          <setup imports="casuvo.dachs.archive"/>
          <code>
            yield from archive.ancillary_rows(self.sourceToken)
          </code>
        </iterator>
        <rowfilter procDef="//products#define">
          <bind key="table">"\survey.ancillary"</bind>
          <bind key="accref">@accref</bind>
          <bind key="path">@accref</bind>
          <bind key="fsize">@fsize</bind>
          <bind key="mime">@mime</bind>
          <bind key="embargo">@release</bind>
          <bind key="owner">@owner_group</bind>
          <bind key="preview">None</bind>
        </rowfilter>
      </embeddedGrammar>
      <make table="ancillary">
        <rowmaker idmaps="*"/>
      </make>
    </data>

    <service id="dl" allowed="dlget,dlmeta">
      <meta name="title">\surveyName image DataLink and SODA cutouts</meta>
      <meta name="description">DataLink for every \surveyName image (the
        file, a PNG preview, its confidence map and catalogue, its input
        pawprints for a tile, its processing record) and SODA cutouts (POS
        CIRCLE, POLYGON, RANGE; PIXEL_1/PIXEL_2) of the image's own detector,
        returned as a FITS file with the image's WCS.</meta>
      <meta name="dlget.description">SODA cutouts of \surveyName images.</meta>
      <meta name="dlmeta.description">DataLink documents of \surveyName
        images.</meta>
      <datalinkCore>
        <descriptorGenerator>
          <setup imports="casuvo.dachs.archive"/>
          <code>
            return archive.image_descriptor(pubDID, "products/\survey/")
          </code>
        </descriptorGenerator>
        <!-- SODA: DaCHS's parameter parsing, geometry and errors, casuvo's
          cached image layout and row reads in place of the stock
          //soda#fits_standardDLFuncs (casuvo.dachs.cutout says why). -->
        <metaMaker>
          <setup imports="casuvo.dachs.archive"/>
          <code>
            yield from archive.soda_parameters(descriptor)
          </code>
        </metaMaker>
        <dataFunction>
          <setup imports="casuvo.dachs.archive,casuvo.dachs.params"/>
          <code>
            params.check_soda(descriptor, args)
            archive.cut_image(descriptor, args)
          </code>
        </dataFunction>
        <dataFormatter>
          <setup imports="casuvo.dachs.archive"/>
          <code>
            return archive.format_image(descriptor)
          </code>
        </dataFormatter>
        <metaMaker semantics="#auxiliary">
          <setup imports="casuvo.dachs.archive"/>
          <code>
            yield from archive.image_links(descriptor)
          </code>
        </metaMaker>
      </datalinkCore>
    </service>

    <service id="sia2" allowed="siap2.xml,form">
      <meta name="shortName">\surveyName SIA2</meta>
      <meta name="title">\surveyName images, SIA 2.0</meta>
      <meta name="description">Simple Image Access 2.0 over the \surveyName
        images in ObsCore (POS, BAND, TIME, COLLECTION, CALIB, ... as
        SIA 2.0 defines them).  Rows link to DataLink for previews, cutouts
        and ancillary files.</meta>
      <meta name="sia.type">Pointed</meta>
      <meta name="testQuery.pos.ra">\testRA</meta>
      <meta name="testQuery.pos.dec">\testDec</meta>
      <meta name="testQuery.size.ra">0.05</meta>
      <meta name="testQuery.size.dec">0.05</meta>
      <publish render="siap2.xml" sets="ivo_managed"/>
      <dbCore queriedTable="//obscore#ObsCore">
        <FEED source="//siap2#parameters"/>
        <condDesc combining="True">
          <phraseMaker>
            <setup imports="casuvo.dachs.params"/>
            <code>
              params.check_sia2(inPars)
              return
              yield
            </code>
          </phraseMaker>
        </condDesc>
        <condDesc combining="True">
          <phraseMaker>
            <code>
              yield "source_table = '\survey.images'"
            </code>
          </phraseMaker>
        </condDesc>
      </dbCore>
    </service>

    <service id="sia1" allowed="siap.xml,form">
      <meta name="shortName">\surveyName SIA1</meta>
      <meta name="title">\surveyName images, SIA 1.0</meta>
      <meta name="description">Simple Image Access 1.0 (POS, SIZE,
        INTERSECT, FORMAT) over the \surveyName images, for older clients;
        also the archive's query-by-position web page.</meta>
      <meta name="sia.type">Pointed</meta>
      <meta name="testQuery.pos.ra">\testRA</meta>
      <meta name="testQuery.pos.dec">\testDec</meta>
      <meta name="testQuery.size.ra">0.05</meta>
      <meta name="testQuery.size.dec">0.05</meta>
      <meta name="_noresultwarning">No image covers this position.</meta>
      <publish render="siap.xml" sets="ivo_managed"/>
      <publish render="form" sets="local"/>
      <!-- the web form: the archive's query-by-position page (thumbnails,
        QC, a link to each image's page); VOTable output is unaffected -->
      <template key="form">//casuvo/search.html</template>
      <FEED source="common/images#siteLook"/>
      <outputTable namePath="images">
        <outputField name="thumb" select="accref" type="text" tablehead="Preview"
            description="PNG preview of the image; click for the image's page.">
          <formatter>
            from casuvo.dachs import pages
            return pages.thumbnail(data, rd)
          </formatter>
        </outputField>
        <outputField name="image" select="accref" type="text" tablehead="Image"
            description="Product file and FITS extension; click for the image's page
              (header, QC, links, cutouts).">
          <formatter>
            from casuvo.dachs import pages
            return pages.image_link(data, rd)
          </formatter>
        </outputField>
        <outputField original="imagetype"/>
        <outputField original="filtername"/>
        <outputField original="object"/>
        <outputField original="nightobs"/>
        <outputField original="coords"/>
        <outputField original="totexptime"/>
        <FEED source="common/images#qcField" column="obsfwhm" decimals="2"/>
        <FEED source="common/images#qcField" column="ellipticity" decimals="3"/>
        <FEED source="common/images#qcField" column="skynoise" decimals="2"/>
        <FEED source="common/images#qcField" column="magzpt" decimals="3"/>
        <FEED source="common/images#qcField" column="abmaglim" decimals="2"/>
        <outputField original="qcstatus">
          <formatter>
            from casuvo.dachs import pages
            return pages.qc_badge(data)
          </formatter>
        </outputField>
        <outputField name="links" select="obs_publisher_did" type="text"
            tablehead="Links" description="DataLink document of the image.">
          <formatter>
            from casuvo.dachs import pages
            return pages.datalink_link(data, rd)
          </formatter>
        </outputField>
      </outputTable>
      <dbCore queriedTable="images">
        <!-- casuvo's range checks first: DaCHS's protoInput builds its
          search box from the same values and fails on NaN or infinities -->
        <condDesc combining="True">
          <phraseMaker>
            <setup imports="casuvo.dachs.params"/>
            <code>
              params.check_sia1(inPars)
              return
              yield
            </code>
          </phraseMaker>
        </condDesc>
        <condDesc original="//siap#protoInput"/>
        <condDesc combining="True">
          <phraseMaker>
            <setup imports="casuvo.dachs.pages,casuvo.dachs.params"/>
            <code>
              pages.check_form_position(inPars)
              params.check_form_radius(inPars, "hSIZE", params.MAX_CONE_RADIUS, "degrees")
              return
              yield
            </code>
          </phraseMaker>
        </condDesc>
        <condDesc original="//siap#humanInput"/>
        <condDesc buildFrom="filtername"/>
        <condDesc buildFrom="imagetype"/>
        <condDesc buildFrom="qcstatus"/>
      </dbCore>
    </service>

    <service id="image" allowed="qp">
      <meta name="title">\surveyName image</meta>
      <meta name="description">The archive page of one \surveyName image
        (image/qp/ACCREF): header summary, QC, preview, the
        image's files and links (DataLink) and a SODA cutout form.</meta>
      <property name="queryField">accref</property>
      <!-- the page takes no query parameters (casuvo.dachs.htmlerrors) -->
      <property name="strictParameters">True</property>
      <template key="resultline">//casuvo/image.html</template>
      <FEED source="common/images#siteLook"/>
      <customRF name="imagetitle">
        from casuvo.dachs import pages
        return tag[pages.image_title(self.result.getPrimaryTable().rows[0])]
      </customRF>
      <customRF name="imagepage">
        from casuvo.dachs import pages
        return pages.image_page(self.result.getPrimaryTable().rows[0], service)
      </customRF>
      <dbCore queriedTable="images">
        <condDesc>
          <inputKey name="accref" type="text" required="True" tablehead="Image"
            description="Access reference of the image (file path/extension)."/>
          <phraseMaker>
            <code>
              yield "accref = %%(%s)s" % base.getSQLKey("accref", inPars["accref"], outPars)
            </code>
          </phraseMaker>
        </condDesc>
      </dbCore>
    </service>

    <service id="overview" allowed="volatile">
      <meta name="shortName">\surveyName archive</meta>
      <meta name="title">\surveyName image archive</meta>
      <meta name="description">What the \surveyName (\instrument) image
        archive holds, per band, night and field, with the QC verdicts, and
        where to get it: the image search, SIA, TAP, DataLink, cone search,
        coverage maps (MOC) and HiPS.</meta>
      <publish render="volatile" sets="local"/>
      <template key="volatile">//casuvo/overview.html</template>
      <property name="strictParameters">True</property>
      <FEED source="common/images#siteLook"/>
      <customRF name="overview">
        from casuvo.dachs import pages
        return pages.overview(service)
      </customRF>
      <nullCore/>
    </service>

    <!-- Regression tests (`dachs test <survey>/q`, run by
      tests/integration/test_rd.py).  The sequential suite follows one tile
      from SIA through DataLink and SODA to its page; each test hands the
      next one its parameters (self.followUp). -->
    <regSuite title="\survey image archive: SIA, DataLink, SODA, page" sequential="True">
      <regTest title="\surveyName SIA2 finds pawprints and tiles at the test position">
        <url POS="CIRCLE \testRA \testDec 0.001">sia2/siap2.xml</url>
        <code>
          rows = self.getVOTableRows()
          self.assertEqual({r["obs_collection"] for r in rows}, {"\surveyName"})
          self.assertEqual({r["dataproduct_type"] for r in rows}, {"image"})
          self.assertEqual({r["calib_level"] for r in rows}, {2, 3})
          tile = min(r["obs_publisher_did"] for r in rows if r["calib_level"] == 3)
          self.followUp.url.freeAttrs = [("ID", tile)]
        </code>
      </regTest>
      <regTest title="\surveyName DataLink of a tile: image, preview, cutout, files, inputs, record">
        <url>dl/dlmeta</url>
        <code>
          rows = self.getVOTableRows()
          self.assertEqual({r["error_message"] for r in rows}, {None})
          # (#documentation: the Phase 3 releases holding the tile, if any)
          self.assertEqual({r["semantics"] for r in rows} - {"#documentation"},
            {"#this", "#preview", "#cutout", "#auxiliary", "#progenitor"})
          # (spectrum-at-position: the spectra on the tile, where there are any)
          self.assertEqual(
            {r["local_semantics"] for r in rows if r["semantics"] == "#auxiliary"}
            - {"spectrum-at-position"},
            {"product-file", "confidence-map", "source-catalogue", "provenance"})
          self.followUp.url.freeAttrs = [
            ("ID", rows[0]["ID"]), ("CIRCLE", "\testRA \testDec 0.01")]
        </code>
      </regTest>
      <regTest title="\surveyName SODA cuts a 72 arcsec square out of the tile">
        <url>dl/dlget</url>
        <code>
          import io
          from astropy.io import fits
          from astropy.wcs import WCS
          from astropy.wcs.utils import proj_plane_pixel_scales
          hdul = fits.open(io.BytesIO(self.data))
          self.assertEqual(len(hdul), 2)
          scales = proj_plane_pixel_scales(WCS(hdul[1].header)) * 3600
          for axis, scale in zip(("NAXIS1", "NAXIS2"), scales):
            self.assertAlmostEqual(hdul[1].header[axis] * scale, 72, delta=3 * scale)
          did = dict(self.url.freeAttrs)["ID"]
          self.followUp.url.content_ = "image/qp/" + did.split("?", 1)[1]
        </code>
      </regTest>
      <regTest title="\surveyName image page of the tile">
        <url>image/qp/</url>
        <code>
          self.assertHTTPStatus(200)
          name = self.url.content_.split("/")[-2]
          self.assertHasStrings(name, "\surveyName", "dlmeta")
        </code>
      </regTest>
    </regSuite>

    <regSuite title="\survey image archive: tables and services">
      <regTest title="\surveyName images, ancillary files and raw frames are all in ObsCore">
        <url parSet="TAP" QUERY="SELECT o.n AS obscore, i.n AS images, a.n AS ancillary,
            r.n AS raw
          FROM (SELECT COUNT(*) AS n FROM ivoa.obscore
            WHERE obs_collection = '\surveyName') AS o
          CROSS JOIN (SELECT COUNT(*) AS n FROM \survey.images) AS i
          CROSS JOIN (SELECT COUNT(*) AS n FROM \survey.ancillary) AS a
          CROSS JOIN (SELECT COUNT(*) AS n FROM \survey.raw) AS r"
          >/tap/sync</url>
        <code>
          row = self.getFirstVOTableRow()
          self.assertTrue(row["images"] and row["ancillary"], row)
          # raw: the raw science exposures (common/rawframes.rd, calib_level 0)
          self.assertEqual(row["obscore"], row["images"] + row["ancillary"] + row["raw"])
        </code>
      </regTest>
      <regTest title="\surveyName SIA1 finds pawprints and tiles at the test position">
        <url POS="\testRA,\testDec" SIZE="0.002">sia1/siap.xml</url>
        <code>
          rows = self.getVOTableRows()
          self.assertEqual({r["imagetype"] for r in rows}, {"pawprint", "tile"})
          self.assertEqual({r["surveyname"] for r in rows}, {"\surveyName"})
        </code>
      </regTest>
      <regTest title="\surveyName SIA2 rejects a declination beyond the pole">
        <url POS="CIRCLE \testRA 95 0.1">sia2/siap2.xml</url>
        <code>
          self.assertHTTPStatus(400)
          self.assertHasStrings('value="ERROR"', "POS")
        </code>
      </regTest>
      <regTest title="\surveyName image search page">
        <url>sia1/form</url>
        <code>
          self.assertHTTPStatus(200)
          self.assertHasStrings("\surveyName images, SIA 1.0", 'name="hPOS"', 'name="filtername"')
        </code>
      </regTest>
      <regTest title="\surveyName archive overview page">
        <url>overview/volatile</url>
        <code>
          self.assertHTTPStatus(200)
          self.assertHasStrings("\surveyName image archive", "\instrument")
        </code>
      </regTest>
    </regSuite>
  </STREAM>
</resource>
