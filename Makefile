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

test: check
	$(BIN)/pytest -q

# Everything but the `browser` and `slow` tests (tests/conftest.py marks *_browser.py and tests/integration).
test-fast: check
	$(BIN)/pytest -q -m "not browser and not slow"

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
