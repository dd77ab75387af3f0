# SPDX-License-Identifier: BSD-3-Clause
"""Release dates and owning groups enforced by PostgreSQL itself (row-level security).

Every access path of the archive — TAP (tables, views such as ``ivoa.obscore``
and the SSA views, joins, uploads), SCS, SIA, SSA, DataLink, SODA, product
downloads and previews, the pages — ends in a query on a handful of tables.
So the rule "a row is visible once its release date has come, and before that
only to members of its owning group" is stated once, as a row-level security
policy on each of those tables, instead of once per service:

- :data:`INSTALL_SQL` creates ``casuvo.row_visible(owner, released)``: true if
  ``released`` is NULL or has passed (``current_date``/``now()``, so a release
  takes effect without a restart), or if ``owner`` is among the groups of the
  session setting ``casuvo.groups`` (comma-separated; ``*`` is every group,
  ``-`` none), and ``casuvo.protect(table, owner_column, release_column)``,
  which enables and *forces* row-level security on a table with the one
  policy ``casuvo_release``.  Forced, because DaCHS's views (ObsCore, SSA)
  belong to the tables' owner, and PostgreSQL checks a view's base tables as
  the view's owner: unforced, the owner's exemption would leak every row
  through the views.
- The DaCHS server sets ``casuvo.groups`` on every connection it hands to a
  request (:mod:`casuvo.dachs.access`); its processes start with ``-``
  (``PGOPTIONS``), so a path the request hook does not know answers as
  anonymous: closed by default.  The command-line roles that build tables
  (DaCHS's ``gavoadmin``) see everything (``*``, a role default); casuvo's
  own ingests run as the superuser, which PostgreSQL never filters.
- A policy would stop PostgreSQL from using an index for the user's own
  conditions unless their functions are LEAKPROOF (it cannot otherwise
  evaluate them before the policy without risking a leak through an error).
  :func:`install` marks LEAKPROOF the functions behind pgSphere's indexable
  operators and the position constructors of DaCHS's ADQL translation
  (:data:`LEAKPROOF_EXTRA`): they compute geometry and raise no error that
  depends on a row's values.  Without this, a cone search on a protected
  table is a sequential scan (measured: ``Seq Scan`` → ``Bitmap Index Scan``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

import psycopg
from psycopg import sql

__all__ = [
    "ALL_GROUPS",
    "ANONYMOUS",
    "GUC",
    "INSTALL_SQL",
    "groups_setting",
    "install",
    "protect",
    "protect_ledger",
    "protected_tables",
    "record_framesets",
    "server_environment",
    "visible_framesets",
]

log = logging.getLogger(__name__)

#: The session setting that names the groups a query acts for.
GUC = "casuvo.groups"
#: ``casuvo.groups`` of the roles that build tables: every group.
ALL_GROUPS = "*"
#: ``casuvo.groups`` of a request without credentials: no group.
ANONYMOUS = "-"
#: Roles DaCHS's queries run as (``trustedquery``, ``untrustedquery`` profiles).
QUERY_ROLES = ("gavo", "untrusted")
#: The role DaCHS imports and creates tables as (``admin`` profile).
BUILD_ROLES = ("gavoadmin",)

_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

INSTALL_SQL = r"""
-- some functions read tables made later (the ledger, DaCHS's dc.products)
SET check_function_bodies = off;
CREATE SCHEMA IF NOT EXISTS casuvo;
GRANT USAGE ON SCHEMA casuvo TO PUBLIC;

-- Whether the session acts for a member of `owner` (casuvo.groups: '*' all, '-' none).
CREATE OR REPLACE FUNCTION casuvo.acts_for(owner text)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT current_setting('casuvo.groups', true) = '*'
      OR owner = ANY (string_to_array(current_setting('casuvo.groups', true), ','))
$$;

CREATE OR REPLACE FUNCTION casuvo.row_visible(owner text, released date)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT released IS NULL OR released <= current_date OR casuvo.acts_for(owner)
$$;

CREATE OR REPLACE FUNCTION casuvo.row_visible(owner text, released timestamp)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT released IS NULL OR released <= localtimestamp OR casuvo.acts_for(owner)
$$;

-- Forced row-level security on `tab` with the one policy casuvo_release,
-- whose condition is `visible` (SQL on the table's columns).
CREATE OR REPLACE FUNCTION casuvo.protect_with(tab regclass, visible text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tab);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tab);
  EXECUTE format('DROP POLICY IF EXISTS casuvo_release ON %s', tab);
  EXECUTE format('CREATE POLICY casuvo_release ON %s USING (%s)', tab, visible);
END
$$;
DROP FUNCTION IF EXISTS casuvo.enable(regclass);

-- A table with its own owner and release columns.
CREATE OR REPLACE FUNCTION casuvo.protect(
    tab regclass, owner_column text DEFAULT 'owner_group',
    release_column text DEFAULT 'release_date')
RETURNS void LANGUAGE sql AS $$
  SELECT casuvo.protect_with(tab, format('casuvo.row_visible(%I, %I)',
                                         owner_column, release_column))
$$;
GRANT EXECUTE ON FUNCTION casuvo.protect(regclass, text, text) TO PUBLIC;

-- Which tile catalogues each frame set of a merged source table came from
-- (the VSA's MergeLog); `casuvo ingest sources` fills it.
CREATE TABLE IF NOT EXISTS casuvo.framesets (
  schema_name text NOT NULL,
  framesetid bigint NOT NULL,
  catname text NOT NULL,
  PRIMARY KEY (schema_name, framesetid, catname));

-- The frame sets of `schema_name` whose every tile is visible to the session
-- (a merged row carries every band's measurements).  SECURITY DEFINER: it
-- must see the tiles the session may not, to refuse their frame sets.
CREATE OR REPLACE FUNCTION casuvo.visible_framesets(schema_name text)
RETURNS bigint[] LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  ids bigint[];
BEGIN
  EXECUTE format(
    'SELECT coalesce(array_agg(framesetid), ''{}'') FROM ('
    ' SELECT f.framesetid FROM casuvo.framesets f'
    ' LEFT JOIN %I.images i ON i.catname = f.catname'
    ' WHERE f.schema_name = $1 GROUP BY f.framesetid'
    ' HAVING bool_and(i.catname IS NOT NULL'
    '                 AND casuvo.row_visible(i.owner_group, i.release_date))) v',
    schema_name) INTO ids USING schema_name;
  RETURN ids;
END
$$;
GRANT EXECUTE ON FUNCTION casuvo.visible_framesets(text) TO PUBLIC;

-- A merged source table: a row is visible when its frame set is (the
-- ARRAY subquery makes the set an InitPlan, computed once per query).
CREATE OR REPLACE FUNCTION casuvo.protect_sources(tab regclass, schema_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT casuvo.protect_with(tab, format(
    'framesetid = ANY (ARRAY(SELECT unnest(casuvo.visible_framesets(%L))))', schema_name))
$$;
GRANT EXECUTE ON FUNCTION casuvo.protect_sources(regclass, text) TO PUBLIC;

-- A neighbour table: a pair is visible when its master source is (the
-- sources' own policy applies inside the check).
CREATE OR REPLACE FUNCTION casuvo.protect_pairs(tab regclass, sources regclass)
RETURNS void LANGUAGE sql AS $$
  SELECT casuvo.protect_with(tab, format(
    'EXISTS (SELECT 1 FROM %s s WHERE s.sourceid = masterobjid)', sources))
$$;
GRANT EXECUTE ON FUNCTION casuvo.protect_pairs(regclass, regclass) TO PUBLIC;

-- The file name of a dc.products row (spectra are served through DataLink:
-- their accesspath is a URL and the accref is the file).
CREATE OR REPLACE FUNCTION casuvo.file_name(accref text, accesspath text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regexp_replace(CASE WHEN accesspath LIKE '%://%' THEN accref ELSE accesspath END,
                        '^.*/', '')
$$;

-- A processing record (ledger.products) is visible when the archive files it
-- names are: the product itself if the archive publishes it, else its inputs
-- (a reduced exposure: its raw frame); records naming no archive file
-- (calibration masters, made of calibration frames ESO publishes at once) are
-- public.  The hidden product names are computed once per query (the ARRAY
-- subquery of the policy is an InitPlan); SECURITY DEFINER: it must see the
-- files the session may not.
DROP FUNCTION IF EXISTS casuvo.ledger_visible(text, jsonb) CASCADE;
CREATE OR REPLACE FUNCTION casuvo.hidden_ledger_products()
RETURNS text[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
  WITH files AS (
    SELECT casuvo.file_name(accref, accesspath) AS name,
           casuvo.row_visible(owner, embargo) AS visible
    FROM dc.products),
  hidden AS (SELECT DISTINCT name FROM files WHERE NOT visible),
  inputs AS (SELECT l.product, regexp_replace(k, '^.*/', '') AS name
             FROM ledger.products l, jsonb_object_keys(coalesce(l.inputs, '{}'::jsonb)) AS k)
  SELECT coalesce(array_agg(DISTINCT name), '{}') FROM (
    SELECT name FROM hidden
    UNION ALL
    SELECT i.product FROM inputs i JOIN hidden h ON h.name = i.name
    WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.name = i.product)) AS x
$$;
GRANT EXECUTE ON FUNCTION casuvo.hidden_ledger_products() TO PUBLIC;
"""

#: The processing ledger's product records and the rule that protects them.
LEDGER_TABLE = "ledger.products"
LEDGER_RULE = "NOT (product = ANY (ARRAY(SELECT unnest(casuvo.hidden_ledger_products()))))"

#: Functions besides pgSphere's operator functions that appear in the index
#: conditions of DaCHS's translated ADQL (``spoint(radians(ra), radians(dec))``).
LEAKPROOF_EXTRA = (
    "radians(double precision)",
    "degrees(double precision)",
    "spoint(double precision, double precision)",
    # the circle of an upload join (CIRCLE around each uploaded position): without it
    # the join cannot use the GiST index below the policy (measured: 36.8 s → 53 ms
    # for 5 000 uploaded positions against vista.sources).  Its only error is a
    # radius over 90°, whose message names no value.
    "scircle(spoint, double precision)",
)

#: The functions of pgSphere's GiST-indexable operators.
_PGSPHERE_OPERATOR_FUNCTIONS = """
SELECT DISTINCT o.oprcode::regprocedure::text
FROM pg_amop a JOIN pg_operator o ON o.oid = a.amopopr
JOIN pg_opfamily f ON f.oid = a.amopfamily JOIN pg_am m ON m.oid = f.opfmethod
WHERE m.amname = 'gist' AND (o.oprleft::regtype::text = ANY(%(types)s)
                             OR o.oprright::regtype::text = ANY(%(types)s))
"""
_PGSPHERE_TYPES = ("spoint", "scircle", "spoly", "sbox", "sellipse", "sline", "spath", "smoc")

#: Tables DaCHS creates itself that carry an owner and a release date:
#: table → (owner column, release column).
SYSTEM_TABLES = {"dc.products": ("owner", "embargo")}


def groups_setting(groups: Iterable[str] | None, *, everything: bool = False) -> str:
    """The ``casuvo.groups`` value for a requester in ``groups`` (None: anonymous).

    Raises ValueError for a group name that could split the list (a comma) or
    is otherwise not a plain name: such a name would never match an owner.
    """
    if everything:
        return ALL_GROUPS
    names = sorted(set(groups or ()))
    for name in names:
        if not _GROUP_NAME.match(name):
            raise ValueError(f"group name {name!r} is not a plain name")
    return ",".join(names) or ANONYMOUS


def server_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a DaCHS server process: its connections start as anonymous."""
    options = env.get("PGOPTIONS", "")
    env["PGOPTIONS"] = f"{options} -c {GUC}={ANONYMOUS}".strip()
    return env


def install(dsn: str, database: str) -> list[str]:
    """Create the functions, mark the geometry functions LEAKPROOF, set the role
    defaults and protect DaCHS's own product table; returns the LEAKPROOF list.

    Idempotent; runs at every ``casuvo up`` as the superuser (only a superuser
    may declare a function LEAKPROOF).  The DaCHS roles must exist (DaCHS's
    ``init`` made them).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(INSTALL_SQL)
        functions = [row[0] for row in conn.execute(
            _PGSPHERE_OPERATOR_FUNCTIONS, {"types": list(_PGSPHERE_TYPES)})]
        functions.extend(LEAKPROOF_EXTRA)
        for signature in functions:
            conn.execute(sql.SQL("ALTER FUNCTION {} LEAKPROOF").format(sql.SQL(signature)))
        db = sql.Identifier(database)
        conn.execute(sql.SQL("ALTER DATABASE {} SET casuvo.groups = {}").format(
            db, sql.Literal(ANONYMOUS)))
        roles = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
        for role in QUERY_ROLES:
            if role in roles:
                conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET casuvo.groups = {}")
                             .format(sql.Identifier(role), db, sql.Literal(ANONYMOUS)))
        for role in BUILD_ROLES:
            if role in roles:
                conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET casuvo.groups = {}")
                             .format(sql.Identifier(role), db, sql.Literal(ALL_GROUPS)))
        for table, (owner, release) in SYSTEM_TABLES.items():
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
                conn.execute("SELECT casuvo.protect(%s::regclass, %s, %s)",
                             (table, owner, release))
        if conn.execute("SELECT to_regclass('dc.products')").fetchone()[0] is not None:
            # the processing records find their files by name
            conn.execute("CREATE INDEX IF NOT EXISTS products_casuvo_file_name"
                         " ON dc.products (casuvo.file_name(accref, accesspath))")
        protect_ledger(conn)
    log.info("row-level release control installed; %d geometry functions LEAKPROOF",
             len(functions))
    return functions


def protect_ledger(conn: psycopg.Connection) -> None:
    """Protect the processing ledger's product records (``vista.processing`` and the
    other processing views, the status pages), if the ledger and the rule exist yet."""
    ready = conn.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regprocedure("
                         "'casuvo.hidden_ledger_products()') IS NOT NULL",
                         (LEDGER_TABLE,)).fetchone()[0]
    if ready:
        conn.execute("SELECT casuvo.protect_with(%s::regclass, %s)",
                     (LEDGER_TABLE, LEDGER_RULE))


def protect(conn: psycopg.Connection, table: str, owner_column: str = "owner_group",
            release_column: str = "release_date") -> None:
    """Protect ``table`` (schema-qualified) with the release policy."""
    conn.execute("SELECT casuvo.protect(%s::regclass, %s, %s)",
                 (table, owner_column, release_column))


def protected_tables(conn: psycopg.Connection,
                     schemas: Sequence[str] | None = None) -> dict[str, str]:
    """Protected tables → their policy's condition (``pg_policies``), optionally in ``schemas``."""
    rows = conn.execute(
        "SELECT schemaname || '.' || tablename, qual FROM pg_policies"
        " WHERE policyname = 'casuvo_release'").fetchall()
    return {t: q for t, q in rows
            if schemas is None or t.split(".", 1)[0] in schemas}


def record_framesets(dsn: str, schema: str, members: Iterable[tuple[int, str]]) -> int:
    """Replace the frame-set membership (``casuvo.framesets``) of ``schema``'s sources.

    One transaction: readers see the old membership or the new, and a frame
    set missing from it is invisible to all but the builders (closed by default).
    """
    rows = sorted(set(members))
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("DELETE FROM casuvo.framesets WHERE schema_name = %s", (schema,))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO casuvo.framesets (schema_name, framesetid, catname)"
                            " VALUES (%s, %s, %s)", [(schema, f, c) for f, c in rows])
    return len(rows)


def visible_framesets(dsn: str, schema: str, setting: str = ANONYMOUS) -> tuple[int, ...]:
    """The frame sets of ``schema``'s merged sources visible to ``setting`` (a
    ``casuvo.groups`` value; default: the public), by the same rule as the policy."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config(%s, %s, false)", (GUC, setting))
        ids = conn.execute("SELECT casuvo.visible_framesets(%s)", (schema,)).fetchone()[0]
    return tuple(sorted(ids or ()))
