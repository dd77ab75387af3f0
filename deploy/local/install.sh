#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Installs everything casuvo needs on Debian 12, as root: Debian packages
# (DaCHS, PostgreSQL 15 with pgSphere and q3c, STILTS, Aladin for its HiPS
# generator Hipsgen, haproxy as the front of several DaCHS processes, wrk as the load
# generator of bench/concurrency.py), the pgSphere mend for
# PostgreSQL >= 15.19, and the service virtual environment in var/venv
# (Debian's python3 with --system-site-packages, so that `import gavo` works
# beside pinned PyPI packages; with JupyterHub and JupyterLab for `casuvo hub`).
# Idempotent; the Makefile runs it once per change of setup.cfg or of this script.
set -eu
cd "$(dirname "$0")/../.."
VENV=${CASUVO_VENV:-var/venv}

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    python3 python3-venv python3-dev python3-gavo \
    postgresql-15 postgresql-client-15 postgresql-15-pgsphere postgresql-15-q3c \
    stilts default-jre-headless make gcc ca-certificates source-extractor psfex aladin \
    chromium chromium-driver fonts-dejavu-core haproxy wrk fitsverify

/usr/bin/python3 deploy/local/mend_pgsphere.py

mkdir -p var

# The compute environment: a plain venv on the same python3 with current
# numpy/astropy for pipelines, cross-matches and HATS (design decision 12).
# Its third-party packages install in the background while the service
# environment is made (each pip keeps about one core busy); casuvo itself goes
# into it after, so that the two editable installs never build in the tree at once.
COMPUTE=${CASUVO_COMPUTE_VENV:-var/venv-compute}
COMPUTE_LOG=var/install-compute.log
(
    if [ ! -x "$COMPUTE/bin/python" ]; then
        /usr/bin/python3 -m venv "$COMPUTE"
    fi
    "$COMPUTE/bin/pip" install --disable-pip-version-check -q --upgrade "pip>=23,<26"
    "$COMPUTE/bin/pip" install --disable-pip-version-check -q -r deploy/local/requirements-compute.txt
) > "$COMPUTE_LOG" 2>&1 &
COMPUTE_PID=$!

if [ ! -x "$VENV/bin/python" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/pip" install --disable-pip-version-check -q --upgrade "pip>=23,<26"
"$VENV/bin/pip" install --disable-pip-version-check -q -e ".[test,hub]"
"$VENV/bin/python" -c "import gavo, casuvo, numpy, astropy; print('service environment ready:', 'numpy', numpy.__version__, 'astropy', astropy.__version__)"

if ! wait "$COMPUTE_PID"; then
    cat "$COMPUTE_LOG"
    echo "install.sh: the compute environment failed (log above, $COMPUTE_LOG)" >&2
    exit 1
fi
cat "$COMPUTE_LOG"
"$COMPUTE/bin/pip" install --disable-pip-version-check -q --no-deps -e .
"$COMPUTE/bin/python" -c "import casuvo.imaging.combine, numpy, astropy; print('compute environment ready:', 'numpy', numpy.__version__, 'astropy', astropy.__version__)"
