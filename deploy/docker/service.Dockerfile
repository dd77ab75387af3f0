# casuvo's VO service: DaCHS (Debian's python3-gavo) with casuvo's adjustments and RDs.
# One DaCHS process per container; run several replicas behind a Service
# (deploy/k8s/dachs.yaml).  The database is external (CASUVO_DB_HOST,
# CASUVO_MANAGE_DB=false); the product store is mounted at /var/lib/casuvo/data.
# Build from the checkout:  docker build -f deploy/docker/service.Dockerfile -t casuvo-service .
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    CASUVO_HOME=/opt/casuvo \
    CASUVO_VAR=/var/lib/casuvo \
    CASUVO_MANAGE_DB=false \
    CASUVO_SERVER_PROCESSES=1

# Debian's packages are the versions DaCHS 2.7 is tested with (design decision 1);
# they follow bookworm's security updates, so they are not pinned here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-gavo postgresql-client-15 fitsverify ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/casuvo
COPY setup.cfg pyproject.toml README.md ./
COPY casuvo ./casuvo
COPY resdir ./resdir
COPY services ./services
COPY pipelines ./pipelines
RUN python3 -m venv --system-site-packages /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir . \
    && useradd --uid 10001 --home-dir /var/lib/casuvo --create-home casuvo
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8080/__system__/tap/run/availability', timeout=4)"]
ENTRYPOINT ["/opt/venv/bin/casuvo"]
CMD ["up"]
