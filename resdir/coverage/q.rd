<?xml version="1.0" encoding="utf-8"?>
<!-- SPDX-License-Identifier: BSD-3-Clause -->
<resource schema="coverage" resdir="coverage">
  <meta name="title">casuvo imaging coverage: MOCs and HiPS</meta>
  <meta name="description">
    Where the casuvo imaging collections have data, for Aladin and other
    HiPS/MOC-aware clients: one MOC 2.0 coverage map per collection (VISTA,
    VST) from the WCS footprints of every science image, and one HiPS per
    instrument and band (VIRCAM J, H, Ks; OmegaCAM u, g, r, i, Halpha) built
    with Aladin's Hipsgen from the tile products, with FITS tiles (the
    products' pixel values) and PNG tiles for quick look.  A HiPS list names
    every HiPS with its service URL.  `casuvo coverage` regenerates them from
    the pipeline products.
  </meta>
  <meta name="creationDate">2026-11-25T00:00:00Z</meta>
  <meta name="subject">sky-surveys</meta>
  <meta name="subject">near-infrared-astronomy</meta>
  <meta name="subject">optical-astronomy</meta>
  <meta name="creator">casuvo survey data centre</meta>
  <meta name="content.type">Survey</meta>
  <meta name="coverage.waveband">Optical</meta>
  <meta name="coverage.waveband">Infrared</meta>
  <meta name="_longdoc" format="rst">
    What is served
    ==============

    ``hips/static/hipslist``
      The HiPS list (HiPS 1.0, section 4.4): one record per HiPS with its
      ``creator_did``, ``hips_service_url`` and the keywords of its
      ``properties`` file.  Aladin: *File > Open* the URL, or ``load URL`` in
      its console.

    ``hips/static/&lt;collection&gt;/&lt;band&gt;/``
      A HiPS: ``properties``, ``Moc.fits``, ``Norder*/Dir*/Npix*.fits`` (the
      products' pixel values, ADU) and ``.png`` (asinh-stretched quick look).

    ``moc/static/&lt;collection&gt;.moc.fits``
      The MOC 2.0 (FITS) of all science images of a collection, at HEALPix
      order 15 (6.4 arcsec cells).

    The files live under the data centre's product store, not in this
    resource directory: ``casuvo up`` links them into the DaCHS inputs tree
    (``inputs/hips``, ``inputs/moc``).
  </meta>

  <service id="hips" allowed="static">
    <meta name="shortName">casuvo HiPS</meta>
    <meta name="title">casuvo HiPS of the VISTA and VST surveys</meta>
    <meta name="description">Hierarchical Progressive Surveys (HiPS 1.0) of
      the casuvo imaging collections, one per instrument and band, and the
      HiPS list naming them all (hipslist).</meta>
    <nullCore/>
    <property name="staticData">\getConfig{inputsDir}/hips</property>
    <publish render="static" sets="local"/>
  </service>

  <service id="moc" allowed="static">
    <meta name="shortName">casuvo MOCs</meta>
    <meta name="title">casuvo coverage maps (MOC) of the imaging collections</meta>
    <meta name="description">Multi-Order Coverage maps (MOC 2.0, FITS) of
      the VISTA and VST image collections, made from the WCS footprint of
      every science image.</meta>
    <nullCore/>
    <property name="staticData">\getConfig{inputsDir}/moc</property>
    <publish render="static" sets="local"/>
  </service>

  <regSuite title="coverage regression">
    <regTest title="The HiPS list names the VISTA J HiPS">
      <url>hips/static/hipslist</url>
      <code>
        self.assertHasStrings("creator_did", "hips_service_url", "vista/hips/J")
      </code>
    </regTest>
    <regTest title="The VISTA J HiPS properties describe an equatorial infrared image HiPS">
      <url>hips/static/vista/J/properties</url>
      <code>
        props = dict(tuple(part.strip() for part in line.split("=", 1))
          for line in self.data.decode("utf-8").splitlines()
          if "=" in line and not line.startswith("#"))
        self.assertEqual(props["creator_did"], "ivo://casuvo.example.org/vista/hips/J")
        self.assertEqual(props["hips_frame"], "equatorial")
        self.assertEqual(props["dataproduct_type"], "image")
        self.assertEqual(props["obs_regime"], "Infrared")
        self.assertIn("fits", props["hips_tile_format"].split())
        self.assertEqual((props["hips_order"], props["hips_tile_width"]), ("10", "512"))
      </code>
    </regTest>
    <regTest title="The VST r HiPS properties say optical">
      <url>hips/static/vst/r/properties</url>
      <code>
        self.assertHasStrings("ivo://casuvo.example.org/vst/hips/r")
        regime = [line.split("=", 1)[1].strip()
          for line in self.data.decode("utf-8").splitlines()
          if line.startswith("obs_regime")]
        self.assertEqual(regime, ["Optical"])
      </code>
    </regTest>
    <regTest title="The VISTA MOC is a MOC 2.0 FITS file at order 15">
      <url>moc/static/vista.moc.fits</url>
      <code>
        import io
        from astropy.io import fits
        self.assertTrue(self.data.startswith(b"SIMPLE  =                    T"))
        with fits.open(io.BytesIO(self.data)) as hdul:
          header = hdul[1].header
          self.assertEqual(header["MOCVERS"], "2.0")
          self.assertEqual(header["MOCORD_S"], 15)
          self.assertTrue(len(hdul[1].data))
      </code>
    </regTest>
    <regTest title="A missing HiPS tile is a 404">
      <url>hips/static/vista/J/Norder3/Dir0/Npix9999.fits</url>
      <code>
        self.assertHTTPStatus(404)
      </code>
    </regTest>
  </regSuite>
</resource>
