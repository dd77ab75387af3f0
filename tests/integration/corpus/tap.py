"""TAP sync (DALI/TAP 1.1) and inline uploads: bad parameters refused, valid queries checked.

TAP 1.1 and DALI 1.1 allow LANG, QUERY, REQUEST, FORMAT/RESPONSEFORMAT,
MAXREC, RUNID and VERSION once; UPLOAD may repeat.  MAXREC is a non-negative
decimal integer.  The valid half runs, for every table with a cone search in
the endpoints, a count, a cone, a capped query and a CSV answer, and compares
them with SQL run directly on the database.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator

import requests

from tests.integration.corpus import Case, qs
from tests.integration.corpus._db import one, rows, votable_rows

#: a cone radius (degrees) small enough to be cheap, large enough to hold rows
CONE_RADIUS = 0.05

#: numbers Python's int() or float() take and a request must not
BAD_INTEGERS = {
    "hex": "0x10", "underscore": "1_0", "arabic-indic digits": "\u0661\u0662",
    "fullwidth digits": "\uff11\uff12", "leading space": " 5", "trailing space": "5 ",
    "NaN": "NaN", "infinity": "inf", "exponent": "1e3", "fraction": "1.5",
    "negative": "-1", "word": "lots", "sign only": "+", "devanagari digits": "\u0967\u0968",
}

_GOOD = "SELECT TOP 3 ra FROM {table}"

VOTABLE = """<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE>
<FIELD name="source_id" datatype="long"/>
<DATA><TABLEDATA>{rows}</TABLEDATA></DATA>
</TABLE></RESOURCE></VOTABLE>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE VOTABLE [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<VOTABLE version="1.3"><RESOURCE><TABLE><FIELD name="a" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>&xxe;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE VOTABLE SYSTEM "http://127.0.0.1:9/evil.dtd">
<VOTABLE version="1.3"><RESOURCE><TABLE><FIELD name="a" datatype="int"/>
<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE VOTABLE [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<VOTABLE version="1.3"/>"""


def billion_laughs() -> bytes:
    """The classic entity-expansion bomb (10**9 "lol"s from under 1 kB)."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE VOTABLE [{"".join(entities)}]>\n'
            '<VOTABLE version="1.3"><RESOURCE><TABLE><FIELD name="a" datatype="char"'
            ' arraysize="*"/><DATA><TABLEDATA><TR><TD>&lol9;</TD></TR></TABLEDATA></DATA>'
            '</TABLE></RESOURCE></VOTABLE>').encode()


def _query(sql: str, **extra: str) -> list[tuple[str, str]]:
    return [("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", sql),
            *((k, v) for k, v in extra.items())]


def _first_source(table: str) -> tuple[float, float]:
    return rows(f"SELECT ra, dec FROM {table} ORDER BY ra, dec LIMIT 1 OFFSET 7")[0]


def _check_count(table: str):
    def check(answer: requests.Response) -> None:
        got = int(votable_rows(answer)[0][0])
        want = one(f"SELECT COUNT(*) FROM {table}")
        assert got == want, f"TAP says {got} rows in {table}, the database {want}"
    return check


def _check_cone(table: str, ra: float, dec: float):
    def check(answer: requests.Response) -> None:
        got = int(votable_rows(answer)[0][0])
        want = one(f"SELECT COUNT(*) FROM {table} WHERE spoint(radians(ra), radians(dec))"
                   " <@ scircle(spoint(radians(%s), radians(%s)), radians(%s))",
                   ra, dec, CONE_RADIUS)
        assert want > 0 and got == want, f"cone: TAP {got}, SQL {want}"
    return check


def _check_capped(limit: int):
    def check(answer: requests.Response) -> None:
        assert len(votable_rows(answer)) == limit
        assert 'name="QUERY_STATUS" value="OVERFLOW"' in answer.text, "OVERFLOW not flagged"
    return check


def _check_csv(table: str):
    def check(answer: requests.Response) -> None:
        assert answer.headers["content-type"].startswith("text/csv")
        lines = list(csv.reader(io.StringIO(answer.text)))
        assert lines[0] == ["ra", "dec"], lines[0]
        want = rows(f"SELECT ra, dec FROM {table} ORDER BY ra, dec LIMIT 3")
        got = [(float(a), float(b)) for a, b in lines[1:]]
        assert len(got) == 3
        for (ra, dec), (wra, wdec) in zip(got, want, strict=True):
            assert math.isclose(ra, wra, abs_tol=1e-9) and math.isclose(dec, wdec, abs_tol=1e-9)
    return check


def _check_text(value: str):
    def check(answer: requests.Response) -> None:
        got = list(csv.reader(io.StringIO(answer.content.decode("utf-8"))))[1][0]
        assert got == value, f"{got!r} != {value!r}"
    return check


def _check_rows(count: int):
    def check(answer: requests.Response) -> None:
        assert len(votable_rows(answer)) == count
    return check


def _check_upload(ids: list[int]):
    def check(answer: requests.Response) -> None:
        got = sorted((int(r[0]), float(r[1])) for r in votable_rows(answer))
        want = sorted((int(i), float(ra)) for i, ra in rows(
            "SELECT source_id, ra FROM gaia.sources WHERE source_id = ANY(%s)", ids))
        assert len(want) == len(ids) and got == want, f"{got} != {want}"
    return check


UNICODE_TEXT = "Ωµ€ 日本語 👍 مرحبا e\u0301 ∑ж"


def _valid(tap: str, tables: list[str]) -> Iterator[Case]:
    sync = f"{tap}/sync"
    for table in tables:
        yield Case("tap", f"count {table}", sync, method="POST", status=200,
                   data=dict(_query(f"SELECT COUNT(*) AS n FROM {table}")),
                   check=_check_count(table))
        ra, dec = _first_source(table)
        cone = (f"SELECT COUNT(*) AS n FROM {table} WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
                f" CIRCLE('ICRS', {ra!r}, {dec!r}, {CONE_RADIUS}))")
        yield Case("tap", f"cone {table}", sync, query=qs(*_query(cone)), status=200,
                   check=_check_cone(table, ra, dec))
        yield Case("tap", f"MAXREC caps {table}", sync, status=200,
                   query=qs(*_query(f"SELECT ra FROM {table}", MAXREC="5")),
                   check=_check_capped(5))
        yield Case("tap", f"csv {table}", sync, status=200,
                   query=qs(*_query(f"SELECT TOP 3 ra, dec FROM {table} ORDER BY ra, dec",
                                    RESPONSEFORMAT="csv")), check=_check_csv(table))
    table = tables[0]
    # DALI wants no rows for MAXREC=0; DaCHS 2.7 sends one, flagged OVERFLOW
    yield Case("tap", "MAXREC=0 is taken", sync, status=200,
               query=qs(*_query(f"SELECT ra FROM {table}", MAXREC="0")),
               needle='name="QUERY_STATUS" value="OVERFLOW"')
    yield Case("tap", "REQUEST may be left out", sync, status=200,
               query=qs(("LANG", "ADQL"), ("QUERY", _GOOD.format(table=table))),
               check=_check_rows(3))
    yield Case("tap", "lower-case parameter names", sync, status=200,
               query=qs(("lang", "ADQL"), ("query", f"SELECT ra FROM {table}"),
                        ("maxrec", "2")), check=_check_capped(2))
    yield Case("tap", "FORMAT alias votable", sync, status=200,
               query=qs(*_query(_GOOD.format(table=table), FORMAT="votable")))
    yield Case("tap", "RESPONSEFORMAT full MIME type", sync, status=200,
               query=qs(*_query(_GOOD.format(table=table),
                                RESPONSEFORMAT="application/x-votable+xml")))
    yield Case("tap", "LANG with version", sync, status=200,
               query=qs(("LANG", "ADQL-2.0"), ("QUERY", _GOOD.format(table=table))))
    # (VOTable 1.4 char columns are ASCII: DaCHS writes "?" there; CSV is UTF-8)
    yield Case("tap", "Unicode string literal", sync, method="POST", status=200,
               data=dict(_query(f"SELECT TOP 1 '{UNICODE_TEXT}' AS txt FROM {table}",
                                RESPONSEFORMAT="csv")),
               check=_check_text(UNICODE_TEXT))
    yield Case("tap", "Unicode RUNID", sync, status=200,
               query=qs(*_query(_GOOD.format(table=table), RUNID=UNICODE_TEXT)))
    if "gaia.sources" in tables:
        ids = [int(r[0]) for r in rows(
            "SELECT source_id FROM gaia.sources ORDER BY source_id LIMIT 3 OFFSET 100")]
        vot = VOTABLE.format(rows="".join(f"<TR><TD>{i}</TD></TR>" for i in ids))
        yield Case("tap", "upload joined with gaia.sources", sync, method="POST", status=200,
                   data=dict(_query("SELECT g.source_id, g.ra FROM TAP_UPLOAD.mine AS u"
                                    " JOIN gaia.sources AS g ON g.source_id = u.source_id",
                                    UPLOAD="mine,param:mine")),
                   files={"mine": ("mine.xml", vot.encode(), "application/x-votable+xml")},
                   check=_check_upload(ids))


def _uploads(sync: str) -> Iterator[Case]:
    def upload(name: str, content: bytes, status: int = 400, needle: str = "",
               param: str = "t,param:f") -> Case:
        return Case("tap", f"upload {name}", sync, method="POST", status=status,
                    needle=needle, files={"f": ("f.xml", content, "application/x-votable+xml")},
                    data=dict(_query("SELECT * FROM TAP_UPLOAD.t", UPLOAD=param)))

    yield upload("XML external entity", XXE, needle="DOCTYPE")
    yield upload("external DTD", EXTERNAL_DTD, needle="DOCTYPE")
    yield upload("parameter entity", PARAMETER_ENTITY, needle="DOCTYPE")
    yield upload("billion laughs", billion_laughs(), needle="DOCTYPE")
    yield upload("truncated VOTable", b"<VOTABLE><RESOURCE><TABLE><FIELD name='a'",
                 needle="upload")
    yield upload("not XML", b"source_id\n1\n2\n", needle="upload")
    yield upload("empty file", b"", needle="upload")
    yield upload("bad long literal", VOTABLE.format(rows="<TR><TD>12ab</TD></TR>").encode(),
                 needle="upload")
    yield upload("bad table name", VOTABLE.format(rows="").encode(), needle="upload",
                 param="1 bad;,param:f")
    yield upload("missing file", VOTABLE.format(rows="").encode(), needle="nothere",
                 param="t,param:nothere")
    yield Case("tap", "upload from a file URL", sync, status=400, needle="file",
               query=qs(*_query("SELECT * FROM TAP_UPLOAD.t", UPLOAD="t,file:///etc/passwd")))
    big = VOTABLE.format(rows="<TR><TD>1</TD></TR>" * 280_000).encode()
    yield Case("tap", "upload over the sync limit", sync, method="POST", status=413,
               needle="bytes", files={"f": ("f.xml", big, "application/x-votable+xml")},
               data=dict(_query("SELECT * FROM TAP_UPLOAD.t", UPLOAD="t,param:f")))


def _bad(tap: str, table: str) -> Iterator[Case]:
    sync = f"{tap}/sync"
    good = _GOOD.format(table=table)
    for name, value in BAD_INTEGERS.items():
        yield Case("tap", f"MAXREC {name}", sync, status=400, needle="MAXREC",
                   query=qs(*_query(good, MAXREC=value)))
    for name in ("LANG", "QUERY", "REQUEST", "FORMAT", "RESPONSEFORMAT", "MAXREC", "RUNID",
                 "VERSION"):
        value = {"LANG": "ADQL", "QUERY": good, "REQUEST": "doQuery", "FORMAT": "votable",
                 "RESPONSEFORMAT": "votable", "MAXREC": "10", "RUNID": "x",
                 "VERSION": "1.1"}[name]
        pairs = [p for p in _query(good) if p[0] != name] + [(name, value), (name, value)]
        yield Case("tap", f"{name} twice", sync, status=400, needle=name, query=qs(*pairs))
        yield Case("tap", f"{name} twice (POST)", sync, method="POST", status=400,
                   needle=name, data=pairs)
    yield Case("tap", "LANG twice, once lower-case", sync, status=400, needle="LANG",
               query=qs(("LANG", "ADQL"), ("lang", "ADQL"), ("QUERY", good)))
    for lang in ("SQL99", "PQL", "ADQL-9.9", "adql\u0131"):
        yield Case("tap", f"LANG {lang}", sync, status=400, needle="LANG" if lang != "SQL99"
                   else "SQL99", query=qs(("LANG", lang), ("QUERY", good)))
    yield Case("tap", "LANG missing", sync, status=400, needle="LANG",
               query=qs(("QUERY", good)))
    yield Case("tap", "QUERY missing", sync, status=400, needle="QUERY",
               query=qs(("LANG", "ADQL")))
    yield Case("tap", "QUERY empty", sync, status=400, needle="QUERY",
               query=qs(("LANG", "ADQL"), ("QUERY", "")))
    for fmt in ("application/x-nonsense", "foo", "votable\u0000"):
        yield Case("tap", f"RESPONSEFORMAT {fmt!r}", sync, status=400,
                   needle="RESPONSEFORMAT" if "\0" in fmt else "format",
                   query=qs(*_query(good, RESPONSEFORMAT=fmt)))
    yield Case("tap", "FORMAT unknown", sync, status=400, needle="format",
               query=qs(*_query(good, FORMAT="excel97")))
    yield Case("tap", "REQUEST unknown", sync, status=400, needle="REQUEST",
               query=qs(("REQUEST", "doSomething"), ("LANG", "ADQL"), ("QUERY", good)))
    yield Case("tap", "NUL in QUERY", sync, status=400, needle="QUERY",
               query="LANG=ADQL&QUERY=SELECT%20TOP%201%20ra%20FROM%20" + table + "%00")
    yield Case("tap", "invalid UTF-8 in QUERY", sync, status=400, needle="QUERY",
               query="LANG=ADQL&QUERY=SELECT%20%FF%FE%20FROM%20" + table)
    yield Case("tap", "invalid UTF-8 in LANG", sync, status=400, needle="LANG",
               query=f"LANG=ADQL%C3&QUERY=SELECT%20ra%20FROM%20{table}")
    yield Case("tap", "NUL in QUERY (POST)", sync, method="POST", status=400, needle="QUERY",
               data={"LANG": "ADQL", "QUERY": good + "\x00"})
    yield Case("tap", "invalid UTF-8 in QUERY (POST)", sync, method="POST", status=400,
               needle="QUERY", data=b"LANG=ADQL&QUERY=SELECT%20%FF%20FROM%20x",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    yield Case("tap", "Unicode identifier", sync, status=400, needle="parse",
               query=qs(*_query(f"SELECT \u2713 FROM {table}")))
    yield Case("tap", "Unicode table name", sync, status=400, needle="s\u00f3urces",
               query=qs(*_query('SELECT TOP 1 * FROM "gaia.s\u00f3urces"')))
    for method in ("PUT", "DELETE", "PATCH"):
        yield Case("tap", f"{method} on sync", sync, method=method, status=405, needle=method)
        yield Case("tap", f"{method} on capabilities", f"{tap}/capabilities", method=method,
                   status=405, needle=method)
    yield Case("tap", "POST on capabilities", f"{tap}/capabilities", method="POST",
               status=405, needle="POST")
    yield Case("tap", "HEAD on sync runs no query", sync, method="HEAD", status=405,
               query=qs(*_query(good)))


def cases(endpoints: dict) -> Iterator[Case]:
    tap = endpoints.get("tap")
    if not tap:
        return
    tables = sorted(endpoints.get("scs", {})) or ["tap_schema.tables"]
    yield from _valid(tap, tables)
    yield from _bad(tap, tables[0])
    yield from _uploads(f"{tap}/sync")
