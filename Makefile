# The two commands: `make run` and `make test`. Both set up a fresh machine by themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: run test test-fast check lint lint-imports typecheck clean-var

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

run: $(STAMP)
	$(BIN)/aristobot run

# The tests that race the wall clock run alone first; then the rest on two xdist workers (one file per worker
# at a time, so module fixtures are shared), each with its own PostgreSQL, Redis and log folder.
test: check
	$(BIN)/pytest -q -m timing
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not timing"

# Everything but the `browser`, `slow` and `timing` tests (tests/conftest.py marks them), on two workers.
test-fast: check
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not browser and not slow and not timing"

# Every static check, before any test runs: lint, formatting, import directions and cycles, types.
check: lint lint-imports typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The import contracts of pyproject.toml ([tool.importlinter]) and no import cycle between two modules.
lint-imports: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python scripts/import_cycles.py

clean-var:
	rm -rf var

typecheck: $(STAMP)
	$(BIN)/mypy
