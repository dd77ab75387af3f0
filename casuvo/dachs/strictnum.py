# SPDX-License-Identifier: BSD-3-Clause
"""Strict number literals wherever DaCHS reads a number from a request.

DaCHS parses numeric request parameters with Python's ``int()`` and
``float()`` (``gavo.votable.dec_tabledata`` for typed input keys, PQL's
``valParser`` for SIA 1.0/SSA ranges, ``gavo.protocols.siap`` for SIA
positions and sizes); these accept ``"1_0"``, ``"١٢"`` (Arabic-Indic
digits), ``" 5 "``, ``"0x10"`` (DaCHS's int decoder reads hex), ``"inf"`` and
``"nan"``, and the literal parsers turn a number they cannot use into
``None``, so the parameter vanished.  A request's number is what DALI 1.1
§3.2 and VOTable 1.4 call a literal: ASCII digits, an optional sign, decimal
point and exponent.  NaN is never a value a client may ask for; infinities only as the open end of a
DALI interval (``BAND=-Inf 5e-7``).  Anything else is a 400 naming the
parameter.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_literal", "install", "strict_float", "strict_int"]

_installed = False

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_INF = re.compile(r"[+-]?(Inf|inf|INF|Infinity)\Z")
_NUMERIC = {"short", "int", "long", "unsignedByte", "float", "double"}


def strict_int(value: Any) -> int:
    """``int(value)`` for a string that is a plain decimal integer literal."""
    if isinstance(value, str) and not _INT.match(value):
        raise ValueError(f"{value!r} is not an integer literal (ASCII digits only)")
    return int(value)


def strict_float(value: Any) -> float:
    """``float(value)`` for a string that is a plain finite decimal literal."""
    if isinstance(value, str) and not _FLOAT.match(value):
        raise ValueError(f"{value!r} is not a finite decimal number (ASCII digits,"
                         " optional sign, point and exponent)")
    return float(value)


def _strict_float_in_list(value: Any) -> float:
    """:func:`strict_float` of one item of a comma-separated list (blanks around it allowed)."""
    return strict_float(value.strip() if isinstance(value, str) else value)


def check_literal(literal: str, datatype: str, scalar: bool, name: str) -> None:
    """Raise a ValidationError naming ``name`` unless ``literal`` is strict.

    ``datatype`` is the VOTable datatype; array and interval values are
    checked token by token (whitespace-separated), where an infinity may
    stand for an open bound.
    """
    from gavo import base

    if datatype not in _NUMERIC or literal == "":
        return
    pattern = _INT if datatype in ("short", "int", "long", "unsignedByte") else _FLOAT
    tokens = [literal] if scalar else literal.split()
    for token in tokens:
        if pattern.match(token):
            continue
        if not scalar and pattern is _FLOAT and _INF.match(token):
            continue
        raise base.ValidationError(
            f"{literal[:40]!r} is not a valid literal for {name}: a number is decimal ASCII"
            " digits with optional sign, point and exponent; no hex, underscores, spaces"
            " or NaN" + ("" if scalar else " (infinities only as interval bounds)"), name)


def _refuse_unparsable(key: Any, inputList: Any) -> None:  # noqa: N803 - DaCHS's name
    """A value DaCHS's literal parser turns into nothing (``NaN``) is a usage error.

    DaCHS maps an unusable number to ``None``, so the parameter silently
    vanished: a NaN SODA ``CIRCLE`` returned the whole image, a NaN SCS ``RA``
    was reported missing.  (NUL characters never get here: the request guard,
    :mod:`casuvo.dachs.httpguard`, refuses them in every parameter.)
    """
    from gavo import base

    if key.type == "raw":
        return
    values = inputList if isinstance(inputList, list) else [inputList]
    for value in values:
        if isinstance(value, str) and value and key._parse(value) is None:
            raise base.ValidationError(
                f"{key.name}={value[:40]!r} is not a usable value (NaN is not allowed here)",
                key.name)


def install() -> None:
    """Check literals in DaCHS's parameter parsing, PQL and SIA; idempotent."""
    global _installed
    if _installed:
        return
    from gavo import base, svcs
    from gavo.base import sqlmunge
    from gavo.formal import converters
    from gavo.protocols import siap
    from gavo.svcs import (
        pql,
        vizierexprs,  # noqa: F401 - registers the vexpr factories
    )

    compute = svcs.InputKey.computeCoreArgValue

    def strict_compute(self: Any, inputList: Any, ensureRequired: bool = True  # noqa: N803
                       ) -> Any:
        # Only what the request sent is checked; RD defaults are DaCHS's.
        _refuse_unparsable(self, inputList)
        if isinstance(inputList, list) and self.type not in self.unprocessedTypes:
            try:
                datatype, arraysize, _ = self._getVOTableType()
            except Exception:  # DaCHS's own parse reports it
                datatype, arraysize = "", None
            for literal in inputList:
                if isinstance(literal, str) and literal not in ("__NULL__", ""):
                    check_literal(literal, datatype, arraysize in (None, "1"), self.name)
                    if self.name.upper() == "MAXREC" and literal.startswith("-"):
                        raise base.ValidationError(
                            f"MAXREC={literal[:20]}: the limit must not be negative",
                            "MAXREC")
        return compute(self, inputList, ensureRequired)

    svcs.InputKey.computeCoreArgValue = strict_compute
    pql.PQLFloatPar.valParser = staticmethod(strict_float)
    pql.PQLIntPar.valParser = staticmethod(strict_int)
    pql.PQLIntPar.stepParser = staticmethod(strict_int)
    # web forms: formal's number fields, and VizieR-like expressions, whose
    # float regex (\d) matches any Unicode digit
    converters.IntegerToStringConverter.cast = staticmethod(strict_int)
    converters.FloatToStringConverter.cast = staticmethod(strict_float)
    vexpr_float = sqlmunge._REGISTRED_SQL_FACTORIES["vexpr-float"]

    def strict_vexpr(field: Any, val: Any, sqlPars: Any) -> Any:  # noqa: N803
        if isinstance(val, str) and any(c.isdigit() and not c.isascii() for c in val):
            raise base.ValidationError(
                f"{val[:40]!r} is not a valid literal for {field.name}: digits must be"
                " ASCII", field.name)
        return vexpr_float(field, val, sqlPars)

    sqlmunge.registerSQLFactory("vexpr-float", strict_vexpr)
    # SIA 1.0 POS/SIZE and SIA 2.0 geometries are parsed with float() in siap.py;
    # the module-level name shadows the builtin there only.  Blanks around a
    # number are taken there: DaCHS's own form writes POS as "ra, dec".
    siap.float = _strict_float_in_list
    _installed = True
