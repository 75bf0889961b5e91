# The two commands of the README. Both create .venv (with the first Python 3.11+ found) and install if needed.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install clean

$(BIN)/python:
	@test -n "$(PYTHON)" || (echo "HITL Desk needs Python 3.11 or newer on the PATH." >&2; exit 1)
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# Migrate, seed the demo data (idempotent), and serve the admin with an RQ worker and the RQ cron scheduler
# on the embedded SQLite and Redis. Ctrl-C stops every process it started.
demo: install
	DEBUG=true $(BIN)/python manage.py migrate --no-input
	DEBUG=true $(BIN)/python manage.py seed_demo
	DEBUG=true $(BIN)/python manage.py serve_demo

# Lint, format check, type check, and the test suite (on the embedded default unless DATABASE_URL/REDIS_URL say otherwise).
test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy governance cases reviews metrics hitl_project bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var/*.sqlite3* var/redis.*
