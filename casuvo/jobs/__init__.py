# SPDX-License-Identifier: BSD-3-Clause
"""Jobs: the one typed boundary between the service and the compute environments."""
