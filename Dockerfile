# xiaozhi-py server image: the offline defaults (silero VAD, pocketsphinx, local dialogue, flite).
#
#   docker build -t xiaozhi-py .
#   docker run --rm -p 8000:8000 -p 8003:8003 -v xiaozhi-data:/data xiaozhi-py
#
# or `docker compose up` (compose.yaml). Settings are XIAOZHI_* environment variables
# (docs/configuration.md) or a YAML file mounted and named with --config. See docs/docker.md.
FROM python:3.11.11-slim-bookworm

ARG SILERO_VERSION=6.2.3
ARG SILERO_SHA256=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Opus for the audio, flite and espeak-ng for speech out (the server needs no sound card).
# Debian's stable versions are taken as they are (pinning them breaks on every point release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopus0 flite espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY iot ./iot
COPY server ./server
COPY device ./device
COPY conformance ./conformance
COPY bench ./bench
COPY scripts ./scripts
# Editable install: the server finds models/ next to its package, as in a checkout; [postgres]:
# the driver for storage_url (deploy/compose.scaled.yaml).
RUN pip install -e ".[postgres]" \
    && python scripts/fetch_silero.py --version "${SILERO_VERSION}" --sha256 "${SILERO_SHA256}" \
        --out models/silero_vad.onnx

# var/ (device registry, generated secrets and certificates, recordings) is the /data volume.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin xiaozhi \
    && mkdir -p /data /app/models/cache \
    && ln -s /data /app/var \
    && chown -R xiaozhi /data /app/models/cache
USER 10001
VOLUME ["/data"]

# 8000: WebSocket (boards' audio); 8003: HTTP (OTA URL, /healthz, /metrics).
EXPOSE 8000 8003
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8003/healthz', timeout=4)"]

ENTRYPOINT ["xiaozhi-server"]
CMD []
