# SPDX-License-Identifier: BSD-3-Clause
"""The ``custom`` renderer of the limits service: the limits document as JSON."""

from casuvo.dachs import limitspage

MainPage = limitspage.JsonPage
