# SPDX-License-Identifier: BSD-3-Clause
"""The pgSphere extension-script mend touches only the two smoc ``@`` operators."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "deploy" / "local" / "mend_pgsphere.py"
SNIPPET = """CREATE OPERATOR <@ (
   LEFTARG    = spoint,
   RIGHTARG   = smoc,
   PROCEDURE  = spoint_subset_smoc,
   COMMUTATOR = '@>',
   NEGATOR    = '!<@',
   RESTRICT   = contsel
);

CREATE OPERATOR @ (
   LEFTARG    = spoint,
   RIGHTARG   = smoc,
   PROCEDURE  = spoint_subset_smoc,
   COMMUTATOR = '@>',
   NEGATOR    = '!<@',
   RESTRICT   = contsel
);

CREATE OPERATOR @ (
   LEFTARG    = spoint,
   RIGHTARG   = scircle,
   PROCEDURE  = spoint_in_circle,
   COMMUTATOR = '~',
   NEGATOR    = '!@'
);
"""


def _mend():
    spec = importlib.util.spec_from_file_location("mend_pgsphere", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.mend


def test_only_smoc_at_operator_loses_commutator() -> None:
    mended = _mend()(SNIPPET)
    blocks = mended.split("\n\n")
    assert "COMMUTATOR = '@>'" in blocks[0]  # <@ on smoc untouched
    assert "COMMUTATOR" not in blocks[1] and "NEGATOR" not in blocks[1]
    assert "COMMUTATOR = '~'" in blocks[2]  # @ on scircle untouched


def test_mend_is_idempotent() -> None:
    mend = _mend()
    assert mend(mend(SNIPPET)) == mend(SNIPPET)
