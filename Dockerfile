# One image for every oddsflow service (setup, workers, collectors, web): docker-compose.yml
# builds it once, in its `setup` service, and the others run it by name.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ODDSFLOW_STATE_DIR=/var/lib/oddsflow

# A system user without a shell or a password: the services need no root (ports above 1024,
# state in ODDSFLOW_STATE_DIR), so a compromised one cannot change the image.
RUN groupadd --system oddsflow \
    && useradd --system --gid oddsflow --home-dir /var/lib/oddsflow --shell /usr/sbin/nologin oddsflow \
    && mkdir -p /var/lib/oddsflow \
    && chown oddsflow:oddsflow /var/lib/oddsflow

WORKDIR /app
COPY pyproject.toml README.md ./
COPY oddsflow oddsflow
COPY producers producers
COPY streams streams
COPY sinks sinks
COPY core core
COPY schemas schemas
COPY config.toml .
# Editable, so the code's root is /app: config.toml is read from there (compose mounts it).
RUN pip install -e .

USER oddsflow
CMD ["oddsflow", "worker", "all"]
