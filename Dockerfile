# One image for web, worker and beat: `course web`, `course worker`, `course beat`.

# The studio's code editor (Ace) and drag and drop (SortableJS) from the npm registry, as
# web/package-lock.json pins them.
FROM node:20-slim AS studio-assets
WORKDIR /assets
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

# The wheel: the product's packages with their templates, static files (the editor among them) and
# migrations as package data; bench/ and tests/ are not in it.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY course ./course
COPY emails ./emails
COPY workers ./workers
COPY web ./web
COPY alembic ./alembic
COPY --from=studio-assets /assets/node_modules ./web/node_modules
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 course
WORKDIR /app

# Exactly the packages requirements.lock pins, each file checked against its hash (docs/development.md's "Dependencies
# and the lock files"); then the project's wheel without dependencies. No source is copied: the image runs
# what the wheel installed.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && pip check && rm -rf /wheels && mkdir -p var && chown course var

USER course
EXPOSE 8000
CMD ["course", "web", "--host", "0.0.0.0", "--port", "8000"]
