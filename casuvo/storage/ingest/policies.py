# SPDX-License-Identifier: BSD-3-Clause
"""Row-level security carried across a catalogue ingest's table swap.

An ingest replaces a published table by a freshly loaded one
(:mod:`casuvo.storage.ingest.catalogue`).  The release control of
:mod:`casuvo.storage.access` lives on the table itself: its row-level
security flags and policies, and policies of *other* tables that refer to
it (a neighbour table's pairs are visible when their master source is).
``CREATE TABLE … LIKE`` copies none of them, and ``DROP TABLE`` refuses
while another table's policy depends on it.  So the swap records them
before (:func:`capture`), drops the dependants' policies, and re-creates
everything in the same transaction (:func:`restore`): no reader ever sees
the new table unprotected, nor the dependants without their policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

__all__ = ["Policy", "Security", "capture", "drop_dependents", "restore"]


@dataclass(frozen=True)
class Policy:
    """One policy, as ``pg_policies`` shows it."""

    table: str
    """Schema-qualified table the policy is on."""
    name: str
    permissive: str
    roles: tuple[str, ...]
    command: str
    qual: str | None
    with_check: str | None

    def create(self) -> sql.Composable:
        """The ``CREATE POLICY`` statement that makes this policy again."""
        schema, table = self.table.split(".", 1)
        roles = sql.SQL(", ").join(
            sql.SQL("PUBLIC") if r == "public" else sql.Identifier(r) for r in self.roles)
        statement = sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}").format(
            sql.Identifier(self.name), sql.Identifier(schema, table),
            sql.SQL(self.permissive), sql.SQL(self.command), roles)
        if self.qual is not None:
            statement += sql.SQL(" USING ({})").format(sql.SQL(self.qual))
        if self.with_check is not None:
            statement += sql.SQL(" WITH CHECK ({})").format(sql.SQL(self.with_check))
        return statement


@dataclass(frozen=True)
class Security:
    """A table's row-level security and the policies of others that refer to it."""

    enabled: bool = False
    forced: bool = False
    own: list[Policy] = field(default_factory=list)
    dependents: list[Policy] = field(default_factory=list)


_POLICIES = (
    "SELECT schemaname || '.' || tablename, policyname, permissive, roles::text[], cmd,"
    " qual, with_check FROM pg_policies")


def capture(conn: psycopg.Connection, oid: int) -> Security:
    """The row-level security of the table ``oid`` and of the policies that use it."""
    enabled, forced = conn.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s",
        (oid,)).fetchone()
    own = [Policy(t, n, p, tuple(r), c, q, w) for t, n, p, r, c, q, w in conn.execute(
        _POLICIES + " WHERE (quote_ident(schemaname) || '.' || quote_ident(tablename))"
        "::regclass = %s::oid::regclass ORDER BY policyname", (oid,)).fetchall()]
    dependents = [Policy(t, n, p, tuple(r), c, q, w) for t, n, p, r, c, q, w in conn.execute(
        _POLICIES + " WHERE (schemaname, tablename, policyname) IN ("
        " SELECT n.nspname, c.relname, p.polname FROM pg_depend d"
        " JOIN pg_policy p ON p.oid = d.objid JOIN pg_class c ON c.oid = p.polrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE d.classid = 'pg_policy'::regclass AND d.refobjid = %s"
        " AND p.polrelid <> %s) ORDER BY 1, policyname", (oid, oid)).fetchall()]
    return Security(enabled, forced, own, dependents)


def drop_dependents(conn: psycopg.Connection, security: Security) -> None:
    """Drop the other tables' policies that would keep the old table from being dropped."""
    for policy in security.dependents:
        schema, table = policy.table.split(".", 1)
        conn.execute(sql.SQL("DROP POLICY {} ON {}").format(
            sql.Identifier(policy.name), sql.Identifier(schema, table)))


def restore(conn: psycopg.Connection, target: sql.Identifier, security: Security) -> None:
    """Give the new ``target`` its row-level security back, then the dependants theirs."""
    if security.enabled:
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(target))
    if security.forced:
        conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(target))
    for policy in [*security.own, *security.dependents]:
        conn.execute(policy.create())
