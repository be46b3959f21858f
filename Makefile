# medgan: two commands on a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= cpu
DATA ?= phantom
RUN_DIR ?= runs/$(PRESET)

.PHONY: setup reproduce test lab summary clean-venv

# The virtualenv, installed from the pinned lock file; rebuilt when the lock file changes.
$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

reproduce: setup
	@start=$$(date +%s); \
	$(PY) -m medgan_lib train --preset $(PRESET) --data $(DATA) --run-dir $(RUN_DIR) && \
	echo "make reproduce: run directory $(RUN_DIR) ($$(( $$(date +%s) - start )) s)"

test: setup
	$(PY) -m pytest -q

summary: setup
	$(PY) -m medgan_lib summary --preset $(PRESET)

lab: setup
	$(PY) -m jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
