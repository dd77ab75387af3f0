# SPDX-License-Identifier: BSD-3-Clause
"""The archive's accounts, made to match ``services/access.toml`` with DaCHS's own calls.

DaCHS keeps users and groups in ``dc.users``/``dc.groups`` and checks HTTP basic
credentials against them (``gavo.protocols.creds``).  :func:`sync` makes those
tables hold exactly the accounts of the file — passwords hashed by DaCHS
(``creds.addUser``/``changeUser``), memberships added and removed — so that
the demo's team member and outsider exist on every fresh machine.  Users not
in the file are left alone (a site's own accounts).  Run in the service
environment as ``python -m casuvo.dachs.users FILE`` with the instance's
``GAVOSETTINGS`` (:func:`casuvo.dachs.instance.ensure_users`).
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Account", "read_accounts", "sync"]


@dataclass(frozen=True)
class Account:
    """One user of the file: name, password, remarks and the survey groups it is in."""

    name: str
    password: str
    remarks: str
    groups: tuple[str, ...]


def read_accounts(path: Path) -> list[Account]:
    """The ``[[user]]`` entries of ``path``; errors name the file and the entry."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    accounts = []
    for i, entry in enumerate(raw.get("user", ())):
        try:
            accounts.append(Account(str(entry["name"]), str(entry["password"]),
                                    str(entry.get("remarks", "")),
                                    tuple(str(g) for g in entry.get("groups", ()))))
        except KeyError as exc:
            raise ValueError(f"{path}: user #{i + 1} has no {exc.args[0]!r}") from None
    return accounts


def sync(accounts: list[Account]) -> None:
    """Make dc.users/dc.groups hold ``accounts`` (their own like-named group included)."""
    from gavo import base
    from gavo.protocols import creds

    with base.getWritableAdminConn() as conn:
        existing = {u for (u,) in conn.query("SELECT username FROM dc.users")}
        for account in accounts:
            if account.name in existing:
                creds.changeUser(conn, account.name, account.password, account.remarks)
            else:
                creds.addUser(conn, account.name, account.password, account.remarks)
            wanted = {account.name, *account.groups}
            have = {g for (g,) in conn.query(
                "SELECT groupname FROM dc.groups WHERE username = %(u)s", {"u": account.name})}
            for group in sorted(have - wanted):
                creds.removeFromGroup(conn, account.name, group)
            for group in sorted(wanted - have):
                creds.addToGroup(conn, account.name, group)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    sync(read_accounts(Path(args[0])))


if __name__ == "__main__":
    main()
