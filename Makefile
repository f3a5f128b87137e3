# Patron — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PATRON_PORT ?= 8000
DEMO_MEMBERS ?= 400
export PATRON_PORT

.PHONY: demo test lint typecheck serve migrate lock clean

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

demo: $(VENV)/.runtime
	PATRON_ENV=demo $(BIN)/patron demo --members $(DEMO_MEMBERS)
	PATRON_ENV=demo $(BIN)/patron serve --port $(PATRON_PORT)

serve: $(VENV)/.runtime
	$(BIN)/patron serve --port $(PATRON_PORT)

migrate: $(VENV)/.runtime
	$(BIN)/patron migrate

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# Re-pin dependencies after editing pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
