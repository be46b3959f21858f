"""nbval settings for ``make test`` (``pytest --nbval-lax notebooks/``).

nbval cannot pass papermill parameters, so the notebooks' parameters cells read their defaults
from the environment (``MEDGAN_PRESET``, ``MEDGAN_DATA``, ``MEDGAN_RUN_DIR``). This file sets that
environment before any kernel starts: always the ``smoke`` preset (the outputs stored in the
committed notebooks are the smoke preset's) in a fresh temporary run directory, or in
``MEDGAN_NBVAL_RUN_DIR`` when given (to reuse a smoke run between invocations), and the recommended
method at smoke scale (preset ``medgan_smoke``) in ``<run dir>_recommended`` beside it.
Notebooks are collected in file order, so 03_training trains the runs that the later notebooks read; when 03 is
deselected, both smoke-scale runs are trained here first.
"""
import os
import shutil
import tempfile
from pathlib import Path

from medgan_lib.notebook_helpers import nbval_environment, prepare_smoke_run

_created: list[str] = []


def pytest_configure(config):
    run_dir = os.environ.get("MEDGAN_NBVAL_RUN_DIR")
    if not run_dir:
        base = tempfile.mkdtemp(prefix="medgan_nbval_")
        _created.append(base)
        run_dir = os.path.join(base, "run")
    os.environ.update(nbval_environment(run_dir))


def pytest_collection_modifyitems(session, config, items):
    names = {Path(str(item.fspath)).name for item in items}
    readers = {n for n in names if n[:2].isdigit() and n[:2] > "03"}
    if readers and "03_training.ipynb" not in names:
        prepare_smoke_run(os.environ["MEDGAN_RUN_DIR"])


def pytest_unconfigure(config):
    for path in _created:
        shutil.rmtree(path, ignore_errors=True)
