# casuvo's compute worker: the compute environment (current numpy/astropy, Dask,
# hats/lsdb, sep) that runs the pipelines, cross-matches and exports on Dask
# workers (design decisions 8 and 12).  The Dask Kubernetes operator starts it as
# scheduler and workers (deploy/k8s/dask.yaml).
# Build from the checkout:  docker build -f deploy/docker/compute.Dockerfile -t casuvo-compute .
FROM python:3.11-slim-bookworm

ENV CASUVO_HOME=/opt/casuvo \
    CASUVO_VAR=/var/lib/casuvo \
    MALLOC_TRIM_THRESHOLD_=65536

WORKDIR /opt/casuvo
COPY deploy/local/requirements-compute.txt ./deploy/local/requirements-compute.txt
RUN pip install --no-cache-dir -r deploy/local/requirements-compute.txt
COPY setup.cfg pyproject.toml README.md ./
COPY casuvo ./casuvo
COPY pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps . \
    && useradd --uid 10001 --home-dir /var/lib/casuvo --create-home casuvo
USER 10001
# `dask scheduler` or `dask worker ADDRESS`, as the operator says
CMD ["dask", "worker", "--help"]
