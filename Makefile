# Patron — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PATRON_PORT ?= 8000
DEMO_MEMBERS ?= 400
# Test processes (pytest-xdist); each runs both database lanes of the tests it is handed.
TEST_WORKERS ?= 2
export PATRON_PORT

.PHONY: demo test lint typecheck serve migrate lock clean assets screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime dependencies, pinned by the lock file.
$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Runtime + development dependencies.
$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.runtime

# Front-end libraries (htmx, ECharts, jsQR) from the npm registry, pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

assets: node_modules/.installed

demo: $(VENV)/.runtime node_modules/.installed
	PATRON_ENV=demo $(BIN)/patron demo --members $(DEMO_MEMBERS)
	PATRON_ENV=demo $(BIN)/patron serve --port $(PATRON_PORT)

serve: $(VENV)/.runtime node_modules/.installed
	$(BIN)/patron serve --port $(PATRON_PORT)

migrate: $(VENV)/.runtime
	$(BIN)/patron migrate

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

test: $(VENV)/.dev node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=30

# Re-pin dependencies after editing pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock

# Screenshots in docs/ (console and portal), taken in Chromium from a demo database.
screenshots: $(VENV)/.dev node_modules/.installed
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
