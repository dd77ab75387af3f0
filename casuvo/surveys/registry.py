# SPDX-License-Identifier: BSD-3-Clause
"""The survey registry: one typed description per survey, read from its config file.

Every fact casuvo knows about one survey — its camera, TAP schema, bands and
their wavelengths, the colours of its band merge, its epoch columns, which
bands get a HiPS, its QC limits and pipeline parameters — is written once, in
``pipelines/<survey>/config.toml``.  :func:`load_registry` reads every such
file (plus any extra directories named in the settings, which is how a test
or a site adds a survey without touching the code), and every piece of code
that would otherwise list surveys or bands asks the registry instead.

The file's ``[survey]`` table says who the survey is; ``[[bands]]`` lists its
passbands in merge (wavelength) order; ``[merge]``, ``[hips]``, ``[detection]``,
``[reference]`` and ``[qc]`` hold the parameters of the steps that use them.
A missing or malformed key is an error naming the file and the key.

``[survey]`` keys (default in brackets; no default: required):

- ``collection`` [the key]: TAP schema and ``resdir/`` directory of the collection;
- ``kind`` [``imaging``]: ``imaging`` (an image archive: SIA, SODA, DataLink,
  pages, HiPS, MOC) or ``spectroscopy``;
- ``label`` [the key in capitals]: the collection's name on the archive pages;
- ``name``: the survey name written into the products (``VVV``);
- ``instrument``: the camera (:func:`casuvo.surveys.instruments.instrument`);
- ``prog_id``: the ESO programme identifier;
- ``regime``: the ObsCore/HiPS wavelength regime (``Infrared``, ``Optical``);
- ``code``: 1..15, the frameSetID prefix and the top bits of the sourceID chunk;
- ``sources`` [false]: the band merge makes a ``<collection>.sources`` table
  (cone search, ``casuvo ingest sources``, Gaia neighbour table);
- ``stack_jitters``, ``obstech``: pipeline parameters (:mod:`casuvo.pipeline.config`).

A ``spectroscopy`` survey names a spectrograph as its ``instrument``
(:func:`casuvo.surveys.instruments.spectrograph`) and has a ``[spectro]`` table
(:class:`SpectroConfig`, :attr:`Survey.spectro`) instead of bands: its demo
fields, modes, OB plan, fibres, error convention and flux unit.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casuvo.surveys.access import AccessPolicy, access_policy
from casuvo.surveys.instruments import (
    Filter,
    Instrument,
    Mode,
    Spectrograph,
    instrument,
    spectrograph,
)

if TYPE_CHECKING:
    from casuvo.config import Settings

__all__ = ["Band", "Registry", "RegistryError", "SpectroConfig", "Survey", "load_registry",
           "load_survey"]

#: the file that describes a survey, in its own directory under ``pipelines/``
CONFIG_NAME = "config.toml"
#: the kinds of survey: ``imaging`` ones have an image archive
KINDS = ("imaging", "spectroscopy")
#: largest survey code: it fills the top 4 bits of the 12-bit sourceID chunk
MAX_CODE = 15


class RegistryError(ValueError):
    """A survey config file is missing a key or has a value casuvo cannot use."""


@dataclass(frozen=True)
class Band:
    """A passband of a survey: its FILTER value, VSA column prefix and wavelength."""

    filter: str
    """``FILTER`` keyword of the products (``J``, ``Ks``, ``Halpha``)."""
    prefix: str
    """VSA column prefix in the merged source table (``j``, ``ks``, ``ha``)."""
    wavelength_nm: float
    """Central wavelength (the camera's filter)."""
    width_nm: float
    """Effective width (ObsCore em_min/em_max)."""
    ucd: str
    """The band's UCD word (``em.IR.J``), in the UCDs of its magnitude and colour columns."""

    @property
    def epoch_column(self) -> str:
        """The band's epoch column in ``<survey>.sources`` (``jmjd``)."""
        return f"{self.prefix}mjd"


@dataclass(frozen=True)
class SpectroConfig:
    """The ``[spectro]`` table of a spectroscopic survey: what its simulator and pipeline do.

    The OB plan of the demo (fields, nights, modes, exposures, authors,
    templates) and the archive's conventions (error convention, flux unit).
    """

    fields: tuple[str, ...]
    """Demo fields (:mod:`casuvo.simulate.fields`) observed."""
    modes: tuple[str, ...]
    """Instrument modes used (keys of the spectrograph's modes), in OB order."""
    n_obs: int
    """OBs per field in the demo plan."""
    n_objects: int
    """Object fibres per OB."""
    n_sky: int
    """Sky fibres per OB."""
    n_dead: int
    """Dead fibres per OB (no light)."""
    exposures: int
    """Exposures per OB."""
    exptime: float
    """Seconds per exposure."""
    mag_range: tuple[float, float]
    """Gaia G range of the targets."""
    nights: tuple[int, ...]
    """Candidate nights (YYYYMMDD, evening date) of the plan."""
    errors: str
    """Error convention of the products: ``sigma`` or ``ivar``."""
    flux_unit: str
    """Flux unit of the calibrated products."""
    authors: tuple[str, ...]
    """OB authors (e-mail) of the plan."""
    programmes: tuple[str, ...]
    """Survey/programme codes (SRV1..3 of the OB monitor)."""
    trimesters: tuple[int, ...]
    proc_templates: tuple[str, ...]
    """Processing template codes (PROGTEMP-like), one per mode."""
    obs_templates: tuple[str, ...]
    """Observing-constraint codes (OBSTEMP-like)."""
    statuses: tuple[str, ...]
    """Planned status of the OBs after the first ones, cycled: ``observed``
    (all exposures), ``partial``, ``aborted``, ``scheduled``."""
    rv_templates: Mapping[str, Any] = field(default_factory=dict)
    """The RV template grid (``teff``, ``logg``, ``feh`` lists)."""
    resample: int = 1
    """Demo miniature: sample the arms this many times more coarsely."""


def _spectro(raw: Mapping[str, Any], path: Path, spec: Spectrograph) -> SpectroConfig:
    sec = _require(raw, "spectro", path, "spectro")
    try:
        cfg = SpectroConfig(
            fields=tuple(sec["fields"]), modes=tuple(sec["modes"]),
            n_obs=int(sec.get("n_obs", len(sec.get("statuses", ())) or 1)),
            n_objects=int(sec["n_objects"]),
            n_sky=int(sec["n_sky"]), n_dead=int(sec.get("n_dead", 0)),
            exposures=int(sec["exposures"]), exptime=float(sec["exptime"]),
            mag_range=(float(sec["mag_range"][0]), float(sec["mag_range"][1])),
            nights=tuple(int(n) for n in sec["nights"]), errors=str(sec["errors"]),
            flux_unit=str(sec["flux_unit"]), authors=tuple(sec["authors"]),
            programmes=tuple(sec["programmes"]),
            trimesters=tuple(int(t) for t in sec["trimesters"]),
            proc_templates=tuple(str(t) for t in sec["proc_templates"]),
            obs_templates=tuple(str(t) for t in sec["obs_templates"]),
            statuses=tuple(sec.get("statuses", ())),
            rv_templates=dict(sec.get("rv_templates", {})),
            resample=int(sec.get("resample", 1)))
    except KeyError as exc:
        raise RegistryError(f"{path}: [spectro] has no {exc.args[0]!r}") from None
    except (TypeError, ValueError, IndexError) as exc:
        raise RegistryError(f"{path}: [spectro] has a bad value ({exc})") from None
    for m in cfg.modes:
        if m not in spec.modes:
            raise RegistryError(f"{path}: [spectro] mode {m!r} is not a mode of {spec.name} "
                                f"({', '.join(spec.modes)})")
    if cfg.errors not in ("sigma", "ivar"):
        raise RegistryError(f"{path}: [spectro] errors must be 'sigma' or 'ivar'")
    if len(cfg.proc_templates) != len(cfg.modes):
        raise RegistryError(f"{path}: [spectro] proc_templates needs one code per mode")
    return cfg


@dataclass(frozen=True)
class Survey:
    """Everything casuvo knows about one survey (decision 13)."""

    key: str
    """Registry key: the config file's directory name (``vista``)."""
    collection: str
    """TAP schema and DaCHS resource directory of the collection (``vista``)."""
    kind: str
    """``imaging`` or ``spectroscopy``."""
    label: str
    """Human name of the collection on pages and in HiPS titles (``VISTA``)."""
    name: str
    """Survey name in products (``VVV``)."""
    camera: str
    """Instrument registry key (:func:`casuvo.surveys.instruments.instrument`)."""
    prog_id: str
    """ESO programme identifier."""
    regime: str
    """Obscore/HiPS wavelength regime (``Infrared``, ``Optical``)."""
    code: int
    """Survey code: prefix of frameSetID and of the sourceID chunk in merged tables."""
    bands: tuple[Band, ...]
    """Passbands in merge (wavelength) order."""
    colours: tuple[tuple[str, str], ...]
    """Point-source colours of the band merge: (bluer, redder) band prefixes."""
    hips_bands: tuple[str, ...]
    """FILTER values that get a HiPS."""
    sources: bool
    """Whether the band merge makes a ``<collection>.sources`` table (with its cone search)."""
    source: Path
    """The config file this description was read from."""
    config: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    """The whole parsed file, for the steps' own sections (``detection``, ``qc``...)."""

    @property
    def instrument(self) -> Instrument:
        """The (full-size) camera (imaging surveys)."""
        return instrument(self.camera)

    @property
    def spectrograph(self) -> Spectrograph:
        """The spectrograph (spectroscopic surveys)."""
        return spectrograph(self.camera)

    @property
    def spectro(self) -> SpectroConfig:
        """The ``[spectro]`` table, typed (spectroscopic surveys only)."""
        if self.kind != "spectroscopy":
            raise RegistryError(f"{self.source}: survey {self.key!r} is not spectroscopic")
        return _spectro(self.config, self.source, self.spectrograph)

    def modes(self) -> tuple[Mode, ...]:
        """The spectrograph modes the survey observes in, in its config's order."""
        return tuple(self.spectrograph.mode(m) for m in self.spectro.modes)

    @property
    def epoch_columns(self) -> tuple[str, ...]:
        """Per-band epoch columns of ``<survey>.sources``, in band order."""
        return tuple(b.epoch_column for b in self.bands)

    @property
    def access(self) -> AccessPolicy:
        """Owning group and release rules (``[access]``, :mod:`casuvo.surveys.access`)."""
        try:
            return access_policy(self.config, self.key, str(self.source))
        except ValueError as exc:
            raise RegistryError(str(exc)) from None

    def band(self, name: str) -> Band:
        """The band with FILTER value or prefix ``name``."""
        for b in self.bands:
            if name in (b.filter, b.prefix):
                return b
        raise RegistryError(f"{self.source}: survey {self.key!r} has no band {name!r}")


@dataclass(frozen=True)
class Registry:
    """The surveys of this installation, by key, in a stable order."""

    surveys: Mapping[str, Survey]

    def __iter__(self) -> Iterator[Survey]:
        return iter(self.surveys.values())

    def __len__(self) -> int:
        return len(self.surveys)

    def __contains__(self, key: object) -> bool:
        return key in self.surveys

    def __getitem__(self, key: str) -> Survey:
        try:
            return self.surveys[key]
        except KeyError:
            known = ", ".join(self.surveys) or "none"
            raise RegistryError(f"unknown survey {key!r} (known: {known})") from None

    def keys(self, kind: str | None = None) -> tuple[str, ...]:
        """Survey keys, optionally of one kind (``imaging``)."""
        return tuple(s.key for s in self if kind is None or s.kind == kind)

    def of_kind(self, kind: str) -> tuple[Survey, ...]:
        return tuple(s for s in self if s.kind == kind)

    def with_sources(self) -> tuple[Survey, ...]:
        """The surveys with a band-merged ``<collection>.sources`` table."""
        return tuple(s for s in self if s.sources)

    def by_collection(self, collection: str) -> Survey:
        for s in self:
            if s.collection == collection:
                return s
        raise RegistryError(f"no survey publishes collection {collection!r}")


def _require(table: Mapping[str, Any], key: str, path: Path, section: str) -> Any:
    try:
        return table[key]
    except KeyError:
        raise RegistryError(f"{path}: [{section}] has no {key!r}") from None


def _band(entry: Mapping[str, Any], filters: Mapping[str, Filter], path: Path) -> Band:
    name = str(_require(entry, "filter", path, "bands"))
    if name not in filters:
        raise RegistryError(f"{path}: band {name!r} is not a filter of the camera "
                            f"(filters: {', '.join(filters)})")
    filt = filters[name]
    return Band(name, str(_require(entry, "prefix", path, "bands")),
                filt.wavelength_nm, filt.width_nm, str(_require(entry, "ucd", path, "bands")))


def load_survey(path: Path) -> Survey:
    """Read one survey's config file; errors name the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))   # TOML is UTF-8
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read survey config ({exc})") from exc
    head = _require(raw, "survey", path, "survey")
    key = path.parent.name
    camera = str(_require(head, "instrument", path, "survey"))
    kind = str(head.get("kind", "imaging"))
    if kind not in KINDS:
        raise RegistryError(f"{path}: [survey] kind must be one of {', '.join(KINDS)}, "
                            f"not {kind!r}")
    try:
        if kind == "spectroscopy":
            spec = spectrograph(camera)
            filters: Mapping[str, Filter] = {}
        else:
            filters = instrument(camera).filters
    except (KeyError, ValueError) as exc:
        raise RegistryError(f"{path}: unknown instrument {camera!r}") from exc
    if kind == "spectroscopy":
        if raw.get("bands") or head.get("sources", False):
            raise RegistryError(f"{path}: a spectroscopic survey has no [[bands]] or sources")
        _spectro(raw, path, spec)  # errors now, naming the file, not at first use
    bands = tuple(_band(b, filters, path) for b in raw.get("bands", ()))
    prefixes = {b.prefix for b in bands}
    if len(prefixes) != len(bands) or len({b.filter for b in bands}) != len(bands):
        raise RegistryError(f"{path}: [[bands]] names a filter or prefix twice")
    colours = tuple(tuple(pair) for pair in raw.get("merge", {}).get("colours", ()))
    for pair in colours:
        if len(pair) != 2 or not set(pair) <= prefixes:
            raise RegistryError(f"{path}: [merge] colour {list(pair)} is not a pair of "
                                f"band prefixes ({', '.join(sorted(prefixes))})")
    hips = tuple(raw.get("hips", {}).get("bands", ()))
    unknown = set(hips) - {b.filter for b in bands}
    if unknown:
        raise RegistryError(f"{path}: [hips] bands {sorted(unknown)} are not survey bands")
    try:
        code = int(_require(head, "code", path, "survey"))
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{path}: [survey] code must be an integer") from exc
    if not 1 <= code <= MAX_CODE:
        # the code is the top 4 bits of the 12-bit sourceID chunk (casuvo.sky.healpix)
        raise RegistryError(f"{path}: [survey] code must be in 1..{MAX_CODE}, not {code}")
    sources = head.get("sources", False)
    if not isinstance(sources, bool):
        raise RegistryError(f"{path}: [survey] sources must be true or false")
    if sources and not bands:
        raise RegistryError(f"{path}: [survey] sources = true needs [[bands]] to merge")
    return Survey(
        key=key, collection=str(head.get("collection", key)), kind=kind,
        label=str(head.get("label", key.upper())),
        name=str(_require(head, "name", path, "survey")), camera=camera,
        prog_id=str(_require(head, "prog_id", path, "survey")),
        regime=str(_require(head, "regime", path, "survey")), code=code,
        bands=bands, colours=colours,  # type: ignore[arg-type]
        hips_bands=hips, sources=sources, source=path, config=raw)


def _config_files(dirs: Iterable[Path]) -> Iterator[Path]:
    for directory in dirs:
        directory = Path(directory)
        if (directory / CONFIG_NAME).is_file():  # a survey directory itself
            yield directory / CONFIG_NAME
            continue
        yield from sorted(directory.glob(f"*/{CONFIG_NAME}"))


def load_registry(settings: Settings | None = None, *,
                  dirs: Iterable[Path] | None = None) -> Registry:
    """The registry of ``settings.home/pipelines`` plus ``settings.survey_dirs``.

    ``dirs`` overrides the directories searched (a directory holding
    ``<survey>/config.toml`` files, or a survey directory itself).  Two config
    files with the same key or collection, or two surveys of one kind with the same
    code, are an error.
    """
    if dirs is None:
        if settings is None:
            from casuvo.config import Settings

            settings = Settings.from_env()
        dirs = [settings.home / "pipelines", *settings.survey_dirs]
    surveys: dict[str, Survey] = {}
    for path in _config_files(dirs):
        survey = load_survey(path)
        for other in surveys.values():
            for what in ("key", "collection", "code"):
                # codes number the source tables of imaging surveys and the OBs of
                # spectroscopic ones: unique within a kind
                if what == "code" and other.kind != survey.kind:
                    continue
                if getattr(other, what) == getattr(survey, what):
                    raise RegistryError(f"{path}: survey {what} {getattr(survey, what)!r} "
                                        f"is already used by {other.source}")
        surveys[survey.key] = survey
    return Registry(surveys)
