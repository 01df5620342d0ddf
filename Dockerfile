# One image for web, worker and beat: `course web`, `course worker`, `course beat`.

# The studio's code editor (Ace) from the npm registry, as web/package-lock.json pins it.
FROM node:20-slim AS studio-assets
WORKDIR /assets
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 course
WORKDIR /app

# Exactly the packages requirements.lock pins, each file checked against its hash (docs/development.md's "Dependencies
# and the lock files"); then, further down, the project itself without dependencies.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY cli ./cli
COPY course ./course
COPY emails ./emails
COPY workers ./workers
COPY web ./web
COPY --from=studio-assets /assets/node_modules ./web/node_modules
COPY alembic ./alembic
RUN pip install --no-deps --editable . && pip check && mkdir -p var && chown course var

USER course
EXPOSE 8000
CMD ["course", "web", "--host", "0.0.0.0", "--port", "8000"]
