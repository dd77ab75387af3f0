# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo COMMAND --help`` shows the command's own options, not only its one-line help."""

from __future__ import annotations

import pytest

from casuvo.cli import SUBCOMMANDS, main


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_each_command_answers_help_with_its_own_parser(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: casuvo {command} ")
    assert SUBCOMMANDS[command] in out


def test_publish_help_lists_force(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["publish", "-h"])
    assert "--force" in capsys.readouterr().out


def test_xmatch_defaults_equal_the_compute_side() -> None:
    """The command line cannot import the compute side's constants at parse time."""
    from casuvo.catalogue import neighbourtable
    from casuvo.cli import xmatch

    assert xmatch.ENGINES == neighbourtable.ENGINES
    assert xmatch.DEFAULT_RADIUS_ARCSEC == neighbourtable.DEFAULT_RADIUS_ARCSEC


def test_xmatch_refuses_an_unknown_engine(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["xmatch", "vst", "--engine", "spark"])
    assert exit_.value.code == 2
    assert "invalid choice: 'spark'" in capsys.readouterr().err
