# SPDX-License-Identifier: BSD-3-Clause
"""The version of casuvo, written into products, ledger rows and releases."""

__version__ = "0.1.0"
