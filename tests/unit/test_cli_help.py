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
