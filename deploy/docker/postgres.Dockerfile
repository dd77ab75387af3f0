# PostgreSQL 15 with pgSphere and q3c from Debian (design decisions 2 and 6), for
# the database StatefulSet (deploy/k8s/postgres.yaml).
# Build:  docker build -f deploy/docker/postgres.Dockerfile -t casuvo-postgres deploy/docker
FROM postgres:15-bookworm

# Debian's pgSphere and q3c builds for PostgreSQL 15, following bookworm's updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15-pgsphere postgresql-15-q3c \
    && rm -rf /var/lib/apt/lists/*
