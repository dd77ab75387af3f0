# The notebook server JupyterHub spawns next to the data: JupyterLab, the casuvo
# client (pyvo, astroquery) configured for the archive, and the demo notebooks.
# Build from the checkout:  docker build -f deploy/docker/notebook.Dockerfile -t casuvo-notebook .
FROM python:3.11-slim-bookworm

ENV CASUVO_HOME=/opt/casuvo \
    CASUVO_TAP_URL=http://casuvo-dachs:8080/tap

WORKDIR /opt/casuvo
COPY deploy/docker/notebook-requirements.txt ./
RUN pip install --no-cache-dir -r notebook-requirements.txt
COPY setup.cfg pyproject.toml README.md ./
COPY casuvo ./casuvo
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 1000 jovyan
COPY --chown=1000 notebooks /home/jovyan/notebooks
USER 1000
WORKDIR /home/jovyan
EXPOSE 8888
CMD ["jupyterhub-singleuser"]
