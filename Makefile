# Every target creates the virtual environment and installs the project when it needs to.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_INSTALLED := $(VENV)/.demo-installed
DEMO_OUT ?= out/emails
# The studio's code editor, served by the web app from web/node_modules.
ACE := web/node_modules/ace-builds/src-min-noconflict/ace.js

.DEFAULT_GOAL := help
.PHONY: help demo render test lint compose-check bench chaos clean lock

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# Installs exactly what requirements-dev.lock pins (the project's dependencies and the dev extra's, each file
# checked against its hash), then the project itself without dependencies; `pip check` fails when
# pyproject.toml asks for something the lock lacks. See "Dependencies and the lock files" in docs/development.md.
$(INSTALLED): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@$(BIN)/python -m pip check || { echo "pyproject.toml and requirements-dev.lock disagree: run make lock"; exit 1; }
	touch $(INSTALLED)

# `make demo` needs only the product and the demo extra: requirements-demo.lock pins them (63 packages
# against the dev lock's 103; half the time to install on a fresh clone). A .venv the other targets made
# holds them already, and is brought up to date instead.
$(DEMO_INSTALLED): pyproject.toml requirements-demo.lock
	@if [ -f $(INSTALLED) ]; then $(MAKE) --no-print-directory $(INSTALLED) && touch $(DEMO_INSTALLED); exit $$?; fi; \
	set -e; \
	$(PYTHON) -m venv $(VENV); \
	$(BIN)/python -m pip install --quiet --upgrade pip; \
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-demo.lock; \
	$(BIN)/python -m pip install --quiet --no-deps -e .; \
	$(BIN)/python -m pip check || { echo "pyproject.toml and requirements-demo.lock disagree: run make lock"; exit 1; }; \
	touch $(DEMO_INSTALLED)

demo: $(DEMO_INSTALLED) $(ACE) ## run the whole course on this machine; watch it arrive at http://127.0.0.1:8000/inbox
	$(BIN)/course demo

render: $(INSTALLED) ## write every course email for a sample subscriber to out/emails (open index.html)
	$(BIN)/course render --out $(DEMO_OUT)

AXE := tests/e2e/node_modules/axe-core/axe.min.js

$(ACE): web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix web --silent --no-audit --no-fund && touch $(ACE); \
	else \
		echo "npm is not installed: the studio edits layouts in plain text boxes (install Node.js and npm for its code editor)"; \
	fi

$(AXE): tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --silent --no-audit --no-fund
	touch $(AXE)

test: $(INSTALLED) $(AXE) $(ACE) ## run the test suite (PYTEST_ARGS="-k ..." to choose)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED) ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

compose-check: ## validate docker-compose.yml (needs docker compose or docker-compose)
	@if docker compose version >/dev/null 2>&1; then compose="docker compose"; else compose="docker-compose"; fi; \
	SECRET_KEY=check PRACTICE_POSTAL_ADDRESS=check $$compose -f docker-compose.yml config --quiet && echo "docker-compose.yml is valid"

bench: $(INSTALLED) ## measure the send path end to end beside the bare-sender limit (PostgreSQL, Redis; BENCH_ARGS="--help")
	$(BIN)/python -m bench send $(BENCH_ARGS)

chaos: $(INSTALLED) ## run the beat and worker through faults, count lost and duplicated emails (CHAOS_ARGS="--help")
	$(BIN)/python -m bench chaos $(CHAOS_ARGS)

# The lock files are written by pip-tools' pip-compile (kept in a virtual environment of its own), from
# PyPI alone: a pip.conf's other indexes and find-links are ignored, so that the hashes are those of PyPI's
# files. The versions are resolved for the Python that runs make (3.11, as in the Dockerfile) on Linux.
LOCK_TOOLS := $(VENV)/lock-tools
PIP_COMPILE := env -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
    CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
    --strip-extras

lock: ## update requirements*.lock from pyproject.toml (LOCK_ARGS=--upgrade-package=NAME moves one package)
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet pip-tools==7.7.0
	$(PIP_COMPILE) --extra=dev --output-file=requirements-dev.lock $(LOCK_ARGS) pyproject.toml
	$(PIP_COMPILE) --constraint=requirements-dev.lock --output-file=requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra=demo --constraint=requirements-dev.lock --output-file=requirements-demo.lock pyproject.toml

clean: ## remove the virtual environment and everything the targets create
	rm -rf $(VENV) out var test-artefacts .hypothesis tests/e2e/node_modules web/node_modules *.egg-info \
		.mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
