# medgan: two commands on a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= cpu
DATA ?= phantom
RUN_DIR ?= runs/$(PRESET)

.PHONY: setup reproduce test lab summary clean-venv notebooks-clean notebooks-outputs

# The notebooks, run in this order by `make reproduce`; EPOCHS / SEED override the preset's.
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EPOCHS ?=
SEED ?=
# The venv's own Jupyter kernel spec (never a global one), found first by papermill and JupyterLab.
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/python3/kernel.json
export JUPYTER_PREFER_ENV_PATH := 1

# The virtualenv, installed from the pinned lock file; rebuilt when the lock file changes.
$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

$(KERNEL_SPEC): $(VENV)/.installed
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (medgan .venv)" >/dev/null

# Runs the notebooks in order with papermill; executed copies go to $(RUN_DIR)/notebooks/, figures
# and tables to $(RUN_DIR)/figures/. 03_training trains the run, or resumes / reuses the one there.
# Kernels start in this directory, so a relative DATA=folder:PATH is relative to it. MEDGAN_HEADLESS=1:
# 06_explore creates no widgets (widget cells can hang papermill for good).
# ImageNet weights for the paper's transfer discriminator: $MEDGAN_WEIGHTS_DIR if set, else the
# workplace's ../shared/weights when present (as .ci/run does); without them `auto` trains from scratch
# and 03_training says so in a banner.
WEIGHTS_DIR ?= $(or $(MEDGAN_WEIGHTS_DIR),$(abspath $(wildcard ../shared/weights)))
reproduce: setup $(KERNEL_SPEC)
	@set -e; start=$$(date +%s); out="$(abspath $(RUN_DIR))"; mkdir -p "$$out/notebooks"; \
	export MEDGAN_HEADLESS=1; \
	$(if $(WEIGHTS_DIR),export MEDGAN_WEIGHTS_DIR='$(WEIGHTS_DIR)'; echo "make reproduce: ImageNet weights from $(WEIGHTS_DIR)";) \
	for nb in $(NOTEBOOKS); do \
	    echo "make reproduce: $$nb (preset $(PRESET), data $(DATA))"; \
	    TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m papermill --cwd . -k python3 "$$nb" "$$out/notebooks/$$(basename $$nb)" \
	        -r preset '$(PRESET)' -r data '$(DATA)' -r run_dir "$$out" \
	        $(if $(EPOCHS),-p epochs $(EPOCHS)) $(if $(SEED),-p seed $(SEED)); \
	done; \
	seconds=$$(( $$(date +%s) - start )); \
	echo "make reproduce: PRESET=$(PRESET) DATA=$(DATA) took $$seconds s ($$(( seconds / 60 )) min $$(( seconds % 60 )) s)" \
	    | tee "$$out/reproduce_time.txt"; \
	echo "  figures and tables (PNG, PDF, CSV, TXT): $$out/figures/"; \
	echo "  executed notebooks:                     $$out/notebooks/"; \
	echo "  run (history.csv, samples/, checkpoints/): $$out/"

# pytest, then every notebook under nbval on the smoke preset: notebooks/conftest.py sets
# MEDGAN_PRESET=smoke and a temporary MEDGAN_RUN_DIR, which the parameters cells read;
# cells marked NBVAL_CHECK_OUTPUT must reproduce the outputs stored in the committed notebooks.
# Both always run; the target fails if either does.
test: setup $(KERNEL_SPEC)
	@status=0; \
	echo "== pytest tests/"; $(PY) -m pytest -q || status=1; \
	echo "== nbval notebooks/ (smoke preset)"; $(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=900 notebooks/ || status=1; \
	exit $$status

# Strip outputs, counts and metadata from the notebooks except the checked cells' expected outputs.
notebooks-clean: setup
	$(PY) tools/clean_notebooks.py $(NOTEBOOKS)

# Re-execute the notebooks on the smoke preset (as `make test` does) and store the checked outputs.
notebooks-outputs: setup $(KERNEL_SPEC)
	$(PY) tools/clean_notebooks.py --refresh $(NOTEBOOKS)

summary: setup
	$(PY) -m medgan_lib summary --preset $(PRESET)

# JupyterLab on the notebooks with the venv's kernel; LAB_ARGS adds options (e.g. --no-browser --port 8890).
LAB_ARGS ?=
lab: setup $(KERNEL_SPEC)
	$(PY) -m jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

clean-venv:
	rm -rf $(VENV)
