# medgan: two commands on a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= cpu
DATA ?= phantom
RUN_DIR ?= runs/$(PRESET)
# The project's recommended method, trained first and shown beside the PRESET run in notebooks 03, 04,
# 05 and 07; RECOMMENDED_RUN_DIR= (empty) trains and shows only the PRESET run.
RECOMMENDED_PRESET ?= medgan
RECOMMENDED_RUN_DIR ?= runs/$(RECOMMENDED_PRESET)
TWO_RUN_NOTEBOOKS := 03_training 04_loss_dynamics 05_epoch_table 07_evaluation
# Epochs of the PRESET run when its 'auto' discriminator finds no ImageNet file (it then trains the
# backbone from scratch, which learns nothing at CPU scale); EPOCHS= overrides it. The notebooks
# that read that run (TWO_RUN_NOTEBOOKS and 06) take it as the parameter fallback_epochs.
FALLBACK_EPOCHS ?= 60
FALLBACK_LENGTH = $(if $(EPOCHS),for EPOCHS=$(EPOCHS) epochs as asked,for FALLBACK_EPOCHS=$(FALLBACK_EPOCHS) epochs instead of the preset's; its config.json and 03_training's banner say OFFLINE FALLBACK)

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

# Runs the notebooks in order with papermill; executed copies go to $(RUN_DIR)/notebooks/. 03_training
# trains (or resumes / reuses) the RECOMMENDED_PRESET run in $(RECOMMENDED_RUN_DIR), then the PRESET run
# in $(RUN_DIR); 04, 05 and 07 show both, the recommended one first; 01, 02, 06 and 08 use the PRESET
# run. Figures and tables go to each run's figures/. EPOCHS / SEED / DATA apply to both runs.
# Kernels start in this directory, so a relative DATA=folder:PATH is relative to it. MEDGAN_HEADLESS=1:
# 06_explore creates no widgets (widget cells can hang papermill for good).
# ImageNet weights for the paper's transfer discriminator: $MEDGAN_WEIGHTS_DIR if set, else the
# workplace's ../shared/weights when present (as .ci/run does); without them `auto` trains from scratch,
# the PRESET run is cut to FALLBACK_EPOCHS and says so (this recipe's first lines, 03_training's banner).
WEIGHTS_DIR ?= $(or $(MEDGAN_WEIGHTS_DIR),$(abspath $(wildcard ../shared/weights)))
reproduce: setup $(KERNEL_SPEC)
	@set -e; start=$$(date +%s); out="$(abspath $(RUN_DIR))"; mkdir -p "$$out/notebooks"; \
	rec="$(if $(and $(RECOMMENDED_PRESET),$(RECOMMENDED_RUN_DIR)),$(abspath $(RECOMMENDED_RUN_DIR)))"; \
	if [ "$$rec" = "$$out" ]; then rec=; fi; \
	export MEDGAN_HEADLESS=1; \
	$(if $(WEIGHTS_DIR),export MEDGAN_WEIGHTS_DIR='$(WEIGHTS_DIR)'; echo "make reproduce: ImageNet weights from $(WEIGHTS_DIR)";) \
	status=0; weights=$$(TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m medgan_lib.pretrained --preset '$(PRESET)') || status=$$?; \
	case $$status in \
	    0) echo "make reproduce: $$weights";; \
	    1) echo "make reproduce: $$weights"; \
	       echo "make reproduce: OFFLINE FALLBACK: the $(PRESET) run's discriminator trains its backbone from random weights (not the paper's method) $(FALLBACK_LENGTH)";; \
	    *) exit $$status;; \
	esac; \
	if [ -n "$$rec" ]; then echo "make reproduce: runs: $(RECOMMENDED_PRESET) (recommended method) in $$rec, then $(PRESET) (paper method) in $$out"; \
	else echo "make reproduce: run: $(PRESET) in $$out (RECOMMENDED_RUN_DIR is empty: no recommended run)"; fi; \
	for nb in $(NOTEBOOKS); do \
	    name=$$(basename "$$nb" .ipynb); set --; \
	    case " $(TWO_RUN_NOTEBOOKS) " in *" $$name "*) set -- -r recommended_preset '$(RECOMMENDED_PRESET)' -r recommended_run_dir "$$rec";; esac; \
	    case " $(TWO_RUN_NOTEBOOKS) 06_explore " in *" $$name "*) set -- "$$@" -p fallback_epochs $(FALLBACK_EPOCHS);; esac; \
	    echo "make reproduce: $$nb (data $(DATA))"; \
	    TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m papermill --cwd . -k python3 "$$nb" "$$out/notebooks/$$name.ipynb" \
	        -r preset '$(PRESET)' -r data '$(DATA)' -r run_dir "$$out" "$$@" \
	        $(if $(EPOCHS),-p epochs $(EPOCHS)) $(if $(SEED),-p seed $(SEED)); \
	done; \
	seconds=$$(( $$(date +%s) - start )); \
	echo "make reproduce: $${rec:+RECOMMENDED_PRESET=$(RECOMMENDED_PRESET) }PRESET=$(PRESET) DATA=$(DATA) took $$seconds s ($$(( seconds / 60 )) min $$(( seconds % 60 )) s)" \
	    | tee "$$out/reproduce_time.txt"; \
	if [ -n "$$rec" ]; then \
	echo "  recommended run ($(RECOMMENDED_PRESET)), history.csv, samples/, checkpoints/: $$rec/"; \
	echo "    its figures and tables (PNG, PDF, CSV, TXT):     $$rec/figures/"; fi; \
	echo "  paper-method run ($(PRESET)), history.csv, samples/, checkpoints/: $$out/"; \
	echo "    its figures and tables (PNG, PDF, CSV, TXT):     $$out/figures/"; \
	echo "  executed notebooks (both runs side by side in 03, 04, 05, 07): $$out/notebooks/"

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
