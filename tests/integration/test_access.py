# SPDX-License-Identifier: BSD-3-Clause
"""Release control on every access path: the leak test.

Every proprietary product (``release_date`` still to come; the survey's
``[access]`` section decides which) is asked for through every path —
TAP (every protected table, ObsCore, an upload join, async), SIA 2 and 1,
SSA, DataLink, SODA, product downloads, previews, the image pages, SCS on
the merged sources, the neighbour tables, the MOCs and HiPS and the "my
data" page — as anonymous, as an authenticated outsider, as a member of
every team and as a member of one team (VVV).  Expected: nothing of it
reaches anonymous or the outsider, members see all they own and nothing
else.  Then the release date of one collection's products is moved to
yesterday in the database, and anonymous sees them at once, without a
restart.

The truth is computed here, on the superuser's connection (which
PostgreSQL never filters): which rows are proprietary and whose, read from
the columns, with the rule written out in the test's own SQL, and the
merged sources' frame sets recomputed from the tiles' fields (VSA
frameSetID = survey code × 2^32 + CRC-32 of the field name).
"""

from __future__ import annotations

import collections
import datetime
import io
import subprocess
import urllib.parse
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import psycopg
import pytest
import requests
from astropy.io.votable import parse
from astropy.table import Table
from mocpy import MOC

from casuvo.config import Settings
from casuvo.surveys.registry import Registry
from tests.truth import hidden_framesets

pytestmark = pytest.mark.integration

TIMEOUT = 60


@dataclass(frozen=True)
class User:
    """A requester: credentials (None: anonymous) and the groups it is in."""

    name: str
    auth: tuple[str, str] | None
    groups: frozenset[str] | None
    """None: every group."""

    def owns(self, group: str) -> bool:
        return self.groups is None or group in self.groups


USERS = (
    User("anonymous", None, frozenset()),
    User("outsider", ("outsider", "demo-outsider-pw"), frozenset()),
    User("member", ("survey-team", "demo-team-pw"), None),
    User("vvv-member", ("vvv-member", "demo-vvv-pw"), frozenset({"vvv"})),
)


@dataclass(frozen=True)
class Product:
    """A proprietary product as ObsCore holds it (read by the superuser)."""

    collection: str
    table: str
    """The table the product's row is in (``dc.products.sourcetable``)."""
    did: str
    access_url: str
    ra: float | None
    dec: float | None
    owner: str
    calib_level: int
    product_type: str


def _session(user: User) -> requests.Session:
    s = requests.Session()
    s.auth = user.auth
    return s


def _votable(content: bytes) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse(io.BytesIO(content)).get_first_table().to_table()


def _tap(session: requests.Session, endpoints: dict, adql: str) -> Table:
    r = session.post(endpoints["tap"] + "/sync", timeout=TIMEOUT, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "MAXREC": 1_000_000})
    assert r.status_code == 200, (adql, r.status_code, r.text[:500])
    return _votable(r.content)


def _map(fn, items) -> list:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(fn, items))


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone()[0], "the truth needs the unfiltered superuser"
        # tables are unfiltered for the superuser, but DaCHS's views (ObsCore, SSA)
        # read their tables as the views' owner, whose policies read this setting
        conn.execute("SET casuvo.groups = '*'")
        yield conn


@pytest.fixture(scope="module")
def products(db: psycopg.Connection) -> dict[str, tuple[str, str, object, str]]:
    """accref → (collection, owner, release date, table) of every product (``dc.products``)."""
    return {a: (s.split(".", 1)[0], o, e, s) for a, s, o, e in db.execute(
        "SELECT accref, sourcetable, owner, embargo FROM dc.products").fetchall()}


@pytest.fixture(scope="module")
def proprietary(db: psycopg.Connection, products: dict, endpoints: dict) -> list[Product]:
    """Every proprietary product in ObsCore, its owner and release from ``dc.products``.

    ObsCore holds accrefs where DaCHS writes product URLs on output; the URL is
    DaCHS's ``getproduct`` link, as TAP answers it.
    """
    today = db.execute("SELECT current_date").fetchone()[0]
    out = []
    for did, url, ra, dec, level, kind in db.execute(
            "SELECT obs_publisher_did, access_url, s_ra, s_dec, calib_level,"
            " dataproduct_type FROM ivoa.obscore ORDER BY obs_publisher_did").fetchall():
        collection, owner, released, table = products[_accref(did)]
        if not url.startswith("http"):
            url = endpoints["base"] + "getproduct/" + urllib.parse.quote(url)
        if released is not None and released > today:
            out.append(Product(collection, table, did, url, ra, dec, owner, int(level), kind))
    return out


def _accref(did: str) -> str:
    return urllib.parse.unquote(did.split("?", 1)[1])


@pytest.fixture(scope="module")
def protected(db: psycopg.Connection) -> dict[str, str]:
    """Protected table → its policy (pg_policies)."""
    return dict(db.execute("SELECT schemaname || '.' || tablename, qual FROM pg_policies"
                           " WHERE policyname = 'casuvo_release'").fetchall())


# ------------------------------------------------------------ the demo's data


def test_every_collection_has_proprietary_and_public_products(
        proprietary: list[Product], registry: Registry, products: dict) -> None:
    """Each collection holds both, owned by the group its config names, released as it says."""
    in_obscore: dict[str, int] = {}
    for p in proprietary:
        in_obscore[p.collection] = in_obscore.get(p.collection, 0) + 1
    today = datetime.date.today()
    for survey in registry:
        mine = [(o, r) for c, o, r, _ in products.values() if c == survey.collection]
        hidden = [r for _, r in mine if r is not None and r > today]
        print(survey.collection, f"{len(hidden)} of {len(mine)} products proprietary,",
              f"{in_obscore.get(survey.collection, 0)} in ObsCore")
        assert 0 < len(hidden) < len(mine), survey.collection
        assert in_obscore.get(survey.collection, 0) > 0, survey.collection
        assert {o for o, _ in mine} == {survey.access.group}, survey.collection
        # the demo's proprietary products are those of its embargoes (until 2099)
        assert set(hidden) <= {e.until for e in survey.access.embargoes}, survey.collection


def test_every_product_table_is_protected(protected: dict[str, str], registry: Registry,
                                          db: psycopg.Connection) -> None:
    for survey in registry:
        c = survey.collection
        tables = {t for (t,) in db.execute(
            "SELECT c.table_schema || '.' || c.table_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = %s AND c.column_name = 'owner_group'"
            " AND t.table_type = 'BASE TABLE'", (c,)).fetchall()}
        assert tables, c
        assert tables <= set(protected), tables - set(protected)
    assert "dc.products" in protected
    for survey in registry.with_sources():
        assert f"{survey.collection}.sources" in protected
        assert f"{survey.collection}.sources_x_gaia" in protected


# ------------------------------------------------------------------- TAP


def _expected_count(db: psycopg.Connection, table: str, qual: str, user: User) -> int:
    """Rows of ``table`` ``user`` may see, by the rule written here."""
    if "row_visible" not in qual:
        return -1  # derived tables: their own tests
    cols = {c for (c,) in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema || '.' ||"
        " table_name = %s", (table,)).fetchall()}
    owner, release = ("owner", "embargo") if table == "dc.products" else \
        ("owner_group", "release_date")
    assert {owner, release} <= cols, table
    released = f"({release} IS NULL OR {release} <= now())"
    if user.groups is None:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return db.execute(f"SELECT count(*) FROM {table} WHERE {released} OR {owner} = ANY(%s)",
                      (sorted(user.groups),)).fetchone()[0]


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_tap_counts_every_protected_table(user: User, endpoints: dict, protected: dict,
                                          db: psycopg.Connection) -> None:
    session = _session(user)
    adql_tables = {t for (t,) in db.execute(
        "SELECT table_name FROM tap_schema.tables").fetchall()}
    checked = 0
    for table, qual in sorted(protected.items()):
        expected = _expected_count(db, table, qual, user)
        if expected < 0 or table not in adql_tables:
            continue
        got = int(_tap(session, endpoints, f"SELECT COUNT(*) AS n FROM {table}")["n"][0])
        assert got == expected, (user.name, table, got, expected)
        checked += 1
    assert checked >= 15, checked


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_tap_obscore_shows_exactly_the_owned_proprietary_rows(
        user: User, endpoints: dict, proprietary: list[Product], db: psycopg.Connection) -> None:
    t = _tap(_session(user), endpoints, "SELECT obs_publisher_did FROM ivoa.obscore")
    got = {str(d) for d in t["obs_publisher_did"]}
    everything = {d for (d,) in db.execute("SELECT obs_publisher_did FROM ivoa.obscore")}
    hidden = {p.did for p in proprietary if not user.owns(p.owner)}
    assert got == everything - hidden, (user.name, len(got), len(everything), len(hidden))


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_processing_records_follow_their_products(user: User, endpoints: dict,
                                                  db: psycopg.Connection) -> None:
    """The processing views (the ledger in TAP) show a product's record only to those
    who may see the product; a record of an unpublished product (a reduced exposure)
    follows its raw frames; one naming no archive file (a master) is public."""
    today = db.execute("SELECT current_date").fetchone()[0]
    by_name: dict[str, list[tuple[str, object]]] = {}
    for accref, path, owner, released in db.execute(
            "SELECT accref, accesspath, owner, embargo FROM dc.products"):
        # the file: its path (a spectrum's is a DataLink URL: then its accref)
        name = (accref if "://" in path else path).rsplit("/", 1)[-1]
        by_name.setdefault(name, []).append((owner, released))

    def visible(names: list[str]) -> bool | None:
        rules = [r for n in names for r in by_name.get(n, [])]
        if not rules:
            return None
        return all(released is None or released <= today or user.owns(owner)
                   for owner, released in rules)

    hidden = 0
    for schema in ("vista", "vst"):
        rows = db.execute("SELECT product, inputs FROM ledger.products WHERE pipeline = %s",
                          (schema,)).fetchall()
        expected = collections.Counter()
        for product, inputs in rows:
            verdict = visible([product])
            if verdict is None:
                verdict = visible([k.rsplit("/", 1)[-1] for k in (inputs or {})])
            if verdict is False:
                hidden += 1
            else:
                expected[product] += 1
        got = collections.Counter(str(p) for p in _tap(
            _session(user), endpoints, f"SELECT product FROM {schema}.processing")["product"])
        assert got == expected, (user.name, schema, sum(got.values()), sum(expected.values()))
    assert (hidden > 0) == (user.groups is not None), (user.name, hidden)


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_tap_upload_join(user: User, endpoints: dict, proprietary: list[Product]) -> None:
    """An uploaded list of every proprietary DID joined with ObsCore."""
    dids = Table({"did": [p.did for p in proprietary]})
    buf = io.BytesIO()
    dids.write(buf, format="votable")
    r = _session(user).post(endpoints["tap"] + "/sync", timeout=TIMEOUT, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "UPLOAD": "mine,param:t",
        "QUERY": "SELECT o.obs_publisher_did FROM tap_upload.mine AS m"
                 " JOIN ivoa.obscore AS o ON o.obs_publisher_did = m.did"},
        files={"t": ("t.vot", buf.getvalue())})
    assert r.status_code == 200, r.text[:500]
    got = {str(d) for d in _votable(r.content)["obs_publisher_did"]}
    assert got == {p.did for p in proprietary if user.owns(p.owner)}


@pytest.mark.parametrize("user", USERS[1:3], ids=lambda u: u.name)
def test_tap_async_job_acts_for_its_owner(user: User, endpoints: dict,
                                          proprietary: list[Product]) -> None:
    import pyvo

    service = pyvo.dal.TAPService(endpoints["tap"], session=_session(user))
    job = service.submit_job("SELECT obs_publisher_did FROM ivoa.obscore")
    try:
        job.run().wait(timeout=TIMEOUT)
        got = {str(d) for d in job.fetch_result().to_table()["obs_publisher_did"]}
    finally:
        job.delete()
    for p in proprietary:
        assert (p.did in got) == user.owns(p.owner), (user.name, p.did)


# ------------------------------------------------------- merged sources, pairs


def _hidden_framesets(db: psycopg.Connection, registry: Registry, settings: Settings,
                      schema: str, user: User) -> set[int]:
    survey = registry.by_collection(schema)
    merged = settings.data_dir / "products" / survey.key / "merged" / f"{survey.key}_sources.fits"
    return hidden_framesets(db, merged, survey.code, schema, user.owns)


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_sources_and_pairs_inherit_the_tiles_release(
        user: User, endpoints: dict, registry: Registry, db: psycopg.Connection,
        settings: Settings) -> None:
    session = _session(user)
    any_hidden = False
    for survey in registry.with_sources():
        c = survey.collection
        hidden = _hidden_framesets(db, registry, settings, c, user)
        all_sets = {f for (f,) in db.execute(f"SELECT DISTINCT framesetid FROM {c}.sources")}
        any_hidden |= bool(hidden & all_sets)
        expected = db.execute(f"SELECT count(*) FROM {c}.sources WHERE NOT framesetid = ANY(%s)",
                              (sorted(hidden),)).fetchone()[0]
        got = _tap(session, endpoints, f"SELECT framesetid AS fs, COUNT(*) AS n"
                   f" FROM {c}.sources GROUP BY framesetid")
        assert not {int(f) for f in got["fs"]} & hidden, (user.name, c)
        assert int(sum(got["n"])) == expected, (user.name, c)
        pairs = db.execute(
            f"SELECT count(*) FROM {c}.sources_x_gaia x JOIN {c}.sources s"
            " ON s.sourceid = x.masterobjid WHERE NOT s.framesetid = ANY(%s)",
            (sorted(hidden),)).fetchone()[0]
        got_pairs = int(_tap(session, endpoints,
                             f"SELECT COUNT(*) AS n FROM {c}.sources_x_gaia")["n"][0])
        assert got_pairs == pairs, (user.name, c, got_pairs, pairs)
        # SCS on the sources at a hidden source: only the visible come back
        row = db.execute(f"SELECT ra, dec FROM {c}.sources WHERE framesetid = ANY(%s) LIMIT 1",
                         (sorted(hidden) or [-1],)).fetchone()
        if row:
            r = session.get(endpoints["scs"][f"{c}.sources"], timeout=TIMEOUT,
                            params={"RA": row[0], "DEC": row[1], "SR": 0.01})
            assert r.status_code == 200
            cone = _votable(r.content)
            column = next(n for n in cone.colnames if n.lower() == "framesetid")
            ids = {int(x) for x in cone[column]}
            assert not ids & hidden, (user.name, c)
    if user.groups is not None and "vvv" not in user.groups:
        assert any_hidden, "the demo must hide some merged sources from non-members"


# ------------------------------------------- SIA, SSA, DataLink, SODA, files


def _images(proprietary: list[Product]) -> list[Product]:
    """The proprietary science images (SIA's, SODA's and the image pages' products)."""
    return [p for p in proprietary if p.table.endswith(".images") and p.ra is not None]


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_sia2_and_sia1(user: User, endpoints: dict, proprietary: list[Product]) -> None:
    session = _session(user)
    images = _images(proprietary)
    assert images

    def ask(p: Product) -> tuple[Product, set[str], set[str]]:
        r2 = session.get(endpoints["sia"][p.collection], timeout=TIMEOUT,
                         params={"POS": f"CIRCLE {p.ra} {p.dec} 0.001", "MAXREC": 10000})
        r1 = session.get(endpoints["sia1"][p.collection], timeout=TIMEOUT,
                         params={"POS": f"{p.ra},{p.dec}", "SIZE": 0.002})
        assert r2.status_code == r1.status_code == 200
        t1 = _votable(r1.content)
        did1 = next(c for c in t1.colnames if "did" in c.lower() or "pubdid" in c.lower())
        return (p, {str(d) for d in _votable(r2.content)["obs_publisher_did"]},
                {str(d) for d in t1[did1]})

    for p, sia2, sia1 in _map(ask, images):
        assert (p.did in sia2) == user.owns(p.owner), (user.name, "SIA2", p.did)
        assert (p.did in sia1) == user.owns(p.owner), (user.name, "SIA1", p.did)


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_ssa(user: User, endpoints: dict, proprietary: list[Product]) -> None:
    session = _session(user)
    spectra = [p for p in proprietary if p.table.endswith(".spectra_meta") and p.ra is not None]
    assert spectra

    def ask(p: Product) -> tuple[Product, set[str]]:
        r = session.get(endpoints["ssa"][p.collection], timeout=TIMEOUT, params={
            "REQUEST": "queryData", "POS": f"{p.ra},{p.dec}", "SIZE": 0.001})
        if r.status_code != 200:
            print("SSA", r.url, r.text[r.text.find("QUERY_STATUS"):][:300])
        assert r.status_code == 200, p.did
        t = _votable(r.content)
        col = next(c for c in t.colnames if c.lower() in ("ssa_pubdid", "obs_publisher_did"))
        return p, {str(d) for d in t[col]}

    for p, dids in _map(ask, spectra):
        assert (p.did in dids) == user.owns(p.owner), (user.name, "SSA", p.did, len(dids))


def _datalink_url(endpoints: dict, p: Product) -> str:
    return endpoints["datalink"][p.collection] + "?ID=" + urllib.parse.quote(p.did)


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_datalink_soda_download_preview(user: User, endpoints: dict,
                                        proprietary: list[Product]) -> None:
    """Every proprietary product that has a DataLink service, through all of its links."""
    session = _session(user)
    member = _session(USERS[2])
    # the products DataLink describes: images and spectra (files of other tables are
    # downloads, checked too: their access URL is the download)
    products = [p for p in proprietary if p.collection in endpoints["datalink"]]
    assert products

    def ask(p: Product) -> tuple[Product, dict[str, int]]:
        codes: dict[str, int] = {}
        # the member's links: the URLs an outsider would have to guess
        links = _votable(member.get(_datalink_url(endpoints, p), timeout=TIMEOUT).content)
        by_sem = {str(s): str(a) for s, a in
                  zip(links["semantics"], links["access_url"], strict=True) if a}
        if p.table.endswith((".images", ".spectra_meta")):
            mine = _votable(session.get(_datalink_url(endpoints, p), timeout=TIMEOUT).content)
            codes["datalink"] = int(any(str(s) == "#this" and a for s, a in
                                        zip(mine["semantics"], mine["access_url"], strict=True)))
        codes["download"] = session.get(p.access_url, timeout=TIMEOUT).status_code
        if "#preview" in by_sem:
            codes["preview"] = session.get(by_sem["#preview"], timeout=TIMEOUT).status_code
        if p.table.endswith(".images"):
            r = session.get(endpoints["soda"][p.collection], timeout=TIMEOUT, params={
                "ID": p.did, "CIRCLE": f"{p.ra} {p.dec} 0.005"})
            codes["soda"] = r.status_code
        return p, codes

    counts = {"datalink": 0, "download": 0, "preview": 0, "soda": 0}
    for p, codes in _map(ask, products):
        owns = user.owns(p.owner)
        for path in ("datalink", "download", "preview", "soda"):
            if path in codes:
                ok = codes[path] == 1 if path == "datalink" else codes[path] == 200
                assert ok == owns, (user.name, path, p.did, codes[path])
                assert codes[path] < 500, (user.name, path, p.did, codes[path])
                counts[path] += 1
    print(user.name, counts)
    assert min(counts.values()) > 0, counts


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_image_pages(user: User, endpoints: dict, proprietary: list[Product]) -> None:
    session = _session(user)
    for p in _images(proprietary)[:20]:
        accref = urllib.parse.unquote(p.did.split("?", 1)[1])
        r = session.get(f"{endpoints['base']}{p.collection}/q/image/qp/{accref}",
                        timeout=TIMEOUT)
        assert r.status_code < 500
        assert (r.status_code == 200) == user.owns(p.owner), (user.name, accref, r.status_code)


# ------------------------------------------------------ coverage, pages


def test_moc_and_hips_show_public_products_only(endpoints: dict, proprietary: list[Product],
                                                db: psycopg.Connection,
                                                settings: Settings) -> None:
    for collection in endpoints["moc"]:
        moc = MOC.from_fits(io.BytesIO(requests.get(endpoints["moc"][collection],
                                                    timeout=TIMEOUT).content))
        for p in _images(proprietary):
            if p.collection != collection:
                continue
            covered_by_public = db.execute(
                f"SELECT count(*) FROM {collection}.images WHERE release_date <= now()"
                " AND coverage @> spoint(radians(%s), radians(%s))",
                (p.ra, p.dec)).fetchone()[0]
            if not covered_by_public:
                assert not moc.contains_lonlat([p.ra] * u.deg, [p.dec] * u.deg)[0], p.did
    names = {Path(urllib.parse.unquote(p.did.split("?", 1)[1])).name for p in proprietary}
    for key, url in endpoints["hips"].items():
        props = requests.get(url + "/properties", timeout=TIMEOUT).text
        progenitors = next(line.split("=", 1)[1] for line in props.splitlines()
                           if line.startswith("prov_progenitor"))
        assert not {n.strip() for n in progenitors.split(",")} & names, key


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_my_data_page(user: User, endpoints: dict, proprietary: list[Product]) -> None:
    r = _session(user).get(endpoints["pages"]["mydata"], timeout=TIMEOUT)
    if user.auth is None:
        assert r.status_code == 401
        assert "basic" in r.headers.get("WWW-Authenticate", "").lower()
        return
    assert r.status_code == 200, r.text[:300]
    shown = set(_attr_values(r.text, "data-did"))
    assert shown == {p.did for p in proprietary if user.owns(p.owner)}, user.name


def _attr_values(html: str, attr: str) -> list[str]:
    import html as htmlmod
    import re

    return [htmlmod.unescape(v) for v in re.findall(rf'{attr}="([^"]*)"', html)]


def test_my_data_lists_my_async_jobs(endpoints: dict) -> None:
    import pyvo

    member = _session(USERS[2])
    job = pyvo.dal.TAPService(endpoints["tap"], session=member).submit_job(
        "SELECT TOP 1 obs_id FROM ivoa.obscore")
    try:
        mine = member.get(endpoints["pages"]["mydata"], timeout=TIMEOUT).text
        theirs = _session(USERS[1]).get(endpoints["pages"]["mydata"], timeout=TIMEOUT).text
    finally:
        job.delete()
    assert job.job_id in _attr_values(mine, "data-job")
    assert job.job_id not in _attr_values(theirs, "data-job")


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("auth", [("survey-team", "wrong"), ("nobody", "demo-team-pw")],
                         ids=["wrong-password", "unknown-user"])
def test_bad_credentials_are_401_everywhere(auth: tuple[str, str], endpoints: dict,
                                            proprietary: list[Product]) -> None:
    s = requests.Session()
    s.auth = auth
    p = _images(proprietary)[0]
    for url, params in (
            (endpoints["tap"] + "/sync", {"REQUEST": "doQuery", "LANG": "ADQL",
                                          "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}),
            (endpoints["sia"][p.collection], {"POS": f"CIRCLE {p.ra} {p.dec} 0.01"}),
            (endpoints["soda"][p.collection], {"ID": p.did, "CIRCLE": f"{p.ra} {p.dec} 0.01"}),
            (_datalink_url(endpoints, p), {}),
            (p.access_url, {})):
        r = s.get(url, params=params, timeout=TIMEOUT)
        assert r.status_code == 401, (url, r.status_code)
        assert "Traceback" not in r.text


# ------------------------------------------------------ after the release


@pytest.fixture
def vst_released(db: psycopg.Connection, proprietary: list[Product]) -> Iterator[list[Product]]:
    """The VST products' release date moved to yesterday, and back afterwards."""
    tables = [t for (t,) in db.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.columns"
        " WHERE table_schema = 'vst' AND column_name = 'release_date'"
        " AND table_name IN (SELECT table_name FROM information_schema.tables"
        " WHERE table_type = 'BASE TABLE' AND table_schema = 'vst')").fetchall()]
    products = db.execute("SELECT accref, embargo FROM dc.products WHERE embargo > now()"
                          " AND sourcetable LIKE 'vst.%'").fetchall()
    saved = {}
    with db.transaction():
        for t in tables:
            # the rows' new ctids and their old dates, to put each back
            saved[t] = db.execute(
                f"UPDATE {t} AS t SET release_date = current_date - 1"
                f" FROM (SELECT ctid AS old, release_date FROM {t} WHERE release_date > now()) o"
                " WHERE t.ctid = o.old RETURNING t.ctid::text, o.release_date").fetchall()
        db.execute("UPDATE dc.products SET embargo = current_date - 1"
                   " WHERE embargo > now() AND sourcetable LIKE 'vst.%'")
    try:
        yield [p for p in proprietary if p.collection == "vst"]
    finally:
        with db.transaction():
            for t, rows in saved.items():
                for ctid, released in rows:
                    db.execute(f"UPDATE {t} SET release_date = %s WHERE ctid = %s::tid",
                               (released, ctid))
            for accref, embargo in products:
                db.execute("UPDATE dc.products SET embargo = %s WHERE accref = %s",
                           (embargo, accref))


def test_release_date_passing_publishes_at_once(vst_released: list[Product], endpoints: dict,
                                               db: psycopg.Connection) -> None:
    assert vst_released
    anonymous = _session(USERS[0])
    got = {str(d) for d in _tap(anonymous, endpoints,
                                "SELECT obs_publisher_did FROM ivoa.obscore")["obs_publisher_did"]}
    assert {p.did for p in vst_released} <= got
    for p in _images(vst_released)[:10]:
        r = anonymous.get(endpoints["sia"]["vst"], timeout=TIMEOUT,
                          params={"POS": f"CIRCLE {p.ra} {p.dec} 0.001"})
        assert p.did in {str(d) for d in _votable(r.content)["obs_publisher_did"]}
        assert anonymous.get(p.access_url, timeout=TIMEOUT).status_code == 200
    # the merged sources of the released tiles, and their pairs, are public now too
    n = db.execute("SELECT count(*) FROM vst.sources").fetchone()[0]
    assert int(_tap(anonymous, endpoints, "SELECT COUNT(*) AS n FROM vst.sources")["n"][0]) == n
    n = db.execute("SELECT count(*) FROM vst.sources_x_gaia").fetchone()[0]
    assert int(_tap(anonymous, endpoints,
                    "SELECT COUNT(*) AS n FROM vst.sources_x_gaia")["n"][0]) == n


def test_released_again_hidden_again(endpoints: dict, proprietary: list[Product]) -> None:
    """After the fixture put the dates back, anonymous sees none of it again."""
    vst = {p.did for p in proprietary if p.collection == "vst"}
    assert vst
    got = {str(d) for d in _tap(_session(USERS[0]), endpoints,
                                "SELECT obs_publisher_did FROM ivoa.obscore")["obs_publisher_did"]}
    assert not got & vst


def test_soda_on_a_whole_file_is_404_for_everyone(endpoints: dict,
                                                 proprietary: list[Product]) -> None:
    """A confidence map's DID is a file, not an image: SODA says so, to members too
    (and to others exactly the same, so the answer tells nothing of its release)."""
    conf = next(p for p in proprietary if p.table.endswith(".ancillary"))
    answers = set()
    for user in USERS:
        r = _session(user).get(endpoints["soda"][conf.collection], timeout=TIMEOUT,
                               params={"ID": conf.did, "CIRCLE": f"{conf.ra} {conf.dec} 0.01"})
        assert r.status_code == 404, (user.name, r.status_code)
        answers.add(r.text.replace(conf.did, ""))
    assert len(answers) == 1


# ------------------------------------------------ a run's own release date


def _casuvo(casuvo_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(casuvo_bin), *args], capture_output=True, text=True,
                          timeout=600, check=False)


def test_a_runs_release_date_overrides_the_rules(casuvo_bin: Path, endpoints: dict,
                                                 db: psycopg.Connection) -> None:
    """`casuvo pipeline run vista --night 20240510 --release-date …` (an approved
    extension) hides that night's public products, and the merged sources made from
    them, at the next publication; a later run without it gives them back."""
    night, until = "20240510", "2031-06-30"
    anonymous = _session(USERS[0])

    def visible() -> tuple[int, int]:
        images = int(_tap(anonymous, endpoints, "SELECT COUNT(*) AS n FROM vista.images"
                          f" WHERE nightobs = {night}")["n"][0])
        sources = int(_tap(anonymous, endpoints,
                           "SELECT COUNT(*) AS n FROM vista.sources")["n"][0])
        return images, sources

    total = db.execute("SELECT count(*) FROM vista.images WHERE nightobs = %s",
                       (int(night),)).fetchone()[0]
    assert total and visible() == (total, db.execute(
        "SELECT count(*) FROM vista.sources").fetchone()[0])
    try:
        run = _casuvo(casuvo_bin, "pipeline", "run", "vista", "--night", night,
                      "--release-date", until, "--no-progress")
        assert run.returncode == 0, run.stdout[-1500:] + run.stderr[-1500:]
        published = _casuvo(casuvo_bin, "publish")
        assert published.returncode == 0, published.stdout[-1500:] + published.stderr[-1500:]
        dates = {d for (d,) in db.execute(
            "SELECT DISTINCT release_date FROM vista.images WHERE nightobs = %s",
            (int(night),))}
        assert dates == {datetime.date.fromisoformat(until)}
        assert visible() == (0, 0)  # the VISTA frame set's tiles are all of that night
    finally:
        again = _casuvo(casuvo_bin, "pipeline", "run", "vista", "--night", night,
                        "--no-progress")
        published = _casuvo(casuvo_bin, "publish")
    assert again.returncode == 0 and published.returncode == 0, again.stdout[-1500:]
    assert visible()[0] == total


@pytest.mark.parametrize(("args", "message"), [
    (("--release-date", "soon"), "is not a date"),
    (("--release-date", "2031-02-30"), "is not a date"),
])
def test_bad_release_dates_are_refused(casuvo_bin: Path, args: tuple[str, ...],
                                       message: str) -> None:
    proc = _casuvo(casuvo_bin, "pipeline", "run", "vista", *args)
    assert proc.returncode == 2 and message in proc.stdout, proc.stdout


def test_spectroscopic_runs_take_no_release_date(casuvo_bin: Path) -> None:
    proc = _casuvo(casuvo_bin, "pipeline", "run", "ges", "--release-date", "2031-01-01")
    assert proc.returncode == 2 and "[[access.embargo]]" in proc.stdout, proc.stdout
