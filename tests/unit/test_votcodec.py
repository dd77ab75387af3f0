"""casuvo.dachs.votcodec: VOTable row encoders reused, with the bytes DaCHS's own give."""

from __future__ import annotations

import warnings

from casuvo.dachs import votcodec

with warnings.catch_warnings():
    # DaCHS 2.7 imports sre_constants (deprecated in Python 3.11)
    warnings.simplefilter("ignore", DeprecationWarning)
    from gavo.votable import V, coding, enc_binary, enc_binary2, enc_tabledata


def _table(name: str) -> object:
    return V.TABLE[
        V.FIELD(name=name, datatype="long")[V.VALUES(null="-9999")],
        V.FIELD(name="ra", datatype="double"),
        V.FIELD(name="label", datatype="char", arraysize="*"),
    ]


ROWS = [(4295806720, 53.1, "a"), (None, None, None), (-1, float("nan"), "ünïcode")]


def test_encoders_are_reused_and_encode_as_dachs_does() -> None:
    compile_anew = getattr(coding.buildEncoder, "__wrapped__", coding.buildEncoder)
    votcodec.install()
    votcodec.install()  # idempotent
    for module in (enc_binary, enc_tabledata):
        first = coding.buildEncoder(_table("source_id"), module)
        assert coding.buildEncoder(_table("source_id"), module) is first
        other = coding.buildEncoder(_table("obj_id"), module)  # another layout
        assert other is not first
        reference = compile_anew(_table("source_id"), module)
        assert [first(r) for r in ROWS] == [reference(r) for r in ROWS]


def test_per_table_environments_are_compiled_each_time() -> None:
    votcodec.install()
    # BINARY2 gives every table its own NULL-flag object: no sharing
    assert (coding.buildEncoder(_table("source_id"), enc_binary2)
            is not coding.buildEncoder(_table("source_id"), enc_binary2))
