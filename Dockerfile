# The connector as a container: slim, non-root, the state store on a volume.
#   docker build -t hubspot-retention-connector:0.1.0 .
#   docker run --rm -v connector-state:/data -e CONNECTOR_TOKEN=pat-… hubspot-retention-connector:0.1.0 sync
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CONNECTOR_STATE_URL=sqlite:////data/state.db \
    CONNECTOR_MAPPINGS_DIR=/app/mappings

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY connector ./connector
COPY mappings ./mappings
RUN pip install . \
    && useradd --create-home --uid 10001 connector \
    && mkdir -p /data && chown connector:connector /data

USER connector
VOLUME ["/data"]
ENTRYPOINT ["connector"]
CMD ["sync", "--output", "json"]
