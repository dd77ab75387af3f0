# SPDX-License-Identifier: BSD-3-Clause
"""Run the ``dachs`` command line with casuvo's server adjustments installed.

``python -m casuvo.dachs.server serve start`` is ``dachs serve start`` with
casuvo's error, ADQL and DataLink adjustments installed first; DaCHS
daemonises by forking, so the adjustments live on in the server process.  Any other ``dachs``
subcommand passes straight through.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from gavo.user import cli

    from casuvo.dachs import adqlchecks, datalinks, errors, mediatypes

    errors.install()
    adqlchecks.install()
    datalinks.install()
    mediatypes.install()
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        datalinks.install_response_ucd()
    sys.argv = ["dachs", *args]
    cli.main()


if __name__ == "__main__":
    main()
