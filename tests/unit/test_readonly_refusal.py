# SPDX-License-Identifier: BSD-3-Clause
"""A write refused by a hot standby is recognised however DaCHS wraps it
(``casuvo.dachs.errors.is_read_only_refusal``), and nothing else is."""

from __future__ import annotations

from casuvo.dachs.errors import READ_ONLY_SQLSTATE, is_read_only_refusal


class _DatabaseError(Exception):
    """What psycopg2 raises: the server's SQLSTATE in ``pgcode``."""

    def __init__(self, message: str, pgcode: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def test_the_standbys_refusal_is_recognised_directly_and_wrapped() -> None:
    refusal = _DatabaseError("cannot execute INSERT in a read-only transaction",
                             READ_ONLY_SQLSTATE)
    assert is_read_only_refusal(refusal)
    try:
        try:
            raise refusal
        except _DatabaseError as exc:
            raise RuntimeError("job creation failed") from exc
    except RuntimeError as wrapped:
        assert is_read_only_refusal(wrapped)
    try:
        try:
            raise refusal
        except _DatabaseError:
            raise ValueError("while handling") from None
    except ValueError as hidden:
        # ``from None`` keeps the context; the refusal is still what happened
        assert is_read_only_refusal(hidden)


def test_other_errors_are_not_refusals() -> None:
    assert not is_read_only_refusal(ValueError("bad MAXREC"))
    assert not is_read_only_refusal(_DatabaseError("relation does not exist", "42P01"))
    loop = RuntimeError("a cycle")
    loop.__context__ = RuntimeError("back")
    loop.__context__.__context__ = loop
    assert not is_read_only_refusal(loop)
