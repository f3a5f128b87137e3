# syntax=docker/dockerfile:1
# Production image of Patron: three stages, so the final image holds neither npm nor compilers.
# Base images are pinned to exact tags; pin them by digest as well in your own registry
# (docker buildx imagetools inspect python:3.11.11-slim-bookworm) and update them deliberately.
# A registry mirror or an in-house base image can stand in for them:
#   docker build --build-arg PYTHON_IMAGE=registry.example.cn/python:3.11-slim-bookworm \
#                --build-arg NODE_IMAGE=registry.example.cn/node:20-bookworm-slim .
# (the Python image must be Debian bookworm with `python` on the PATH and the venv module).
ARG NODE_IMAGE=node:20.18.1-bookworm-slim
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- front-end libraries (htmx, ECharts, jsQR) from the npm lock file ------------------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- Python packages into a virtual environment -----------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/patron
WORKDIR /build
COPY requirements.lock ./
RUN /opt/patron/bin/pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
# Dependencies come from the lock above; this only adds Patron itself (and anything the lock
# does not pin yet).
RUN /opt/patron/bin/pip install .

# ---- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# pg_dump/pg_restore for `patron backup` (the client's major version must be at least the
# server's: Debian bookworm ships 15, matching the compose file's PostgreSQL); tini reaps
# workers and forwards SIGTERM so requests in flight finish.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/patron --create-home patron
COPY --from=build /opt/patron /opt/patron
COPY --from=assets /build/node_modules /opt/patron-assets/node_modules
ENV PATH=/opt/patron/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATRON_HOST=0.0.0.0 \
    PATRON_PORT=8000 \
    PATRON_ASSETS_DIR=/opt/patron-assets/node_modules \
    PATRON_BACKUP_DIR=/var/lib/patron/backups \
    PATRON_STATUS_DIR=/var/lib/patron/status \
    PATRON_KEY_FILE=/run/secrets/patron_keys.json
WORKDIR /var/lib/patron
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "patron"]
# Workers: about two per CPU core given to the container (docs/operations.md, Sizing).
# Migrations run in their own one-off container (`patron migrate`), hence --no-migrate.
CMD ["serve", "--no-migrate", "--workers", "2", "--graceful-timeout", "30"]
