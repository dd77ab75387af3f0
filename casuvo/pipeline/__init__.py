# SPDX-License-Identifier: BSD-3-Clause
"""Running the imaging pipelines: configuration, raw-file index, Dask graph, ledger, resume.

Runs in the compute environment (``var/venv-compute``); the ``casuvo
pipeline`` command of the service environment starts it there.
"""
