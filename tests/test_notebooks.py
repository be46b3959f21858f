"""The committed notebooks: clean, parameterised for papermill, and checked by nbval.

Executing them is nbval's job (``make test`` runs ``pytest --nbval-lax notebooks/``); these tests
only read the files, so they are fast.
"""
import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETERS = {"preset", "data", "epochs", "run_dir", "seed"}


def clean_tool():
    spec = importlib.util.spec_from_file_location("clean_notebooks", REPO / "tools" / "clean_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_six_notebooks_exist_in_order():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_architecture", "02_data", "03_training", "04_loss_dynamics", "05_epoch_table", "06_explore",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    """Only checked cells have outputs (text, no local paths); no counts, no run metadata."""
    tool = clean_tool()
    nb = nbformat.read(path, as_version=4)
    assert nbformat.writes(tool.clean(nb, path.name)) + "\n" == path.read_text(), (
        f"{path.name} is not clean: run `make notebooks-clean` (or `make notebooks-outputs`)")
    checked = [c for c in nb.cells if tool.is_checked(c)]
    assert checked, "every notebook checks at least one deterministic output"
    assert all(c.outputs for c in checked)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_papermill_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)
                for t in node.targets}
    assert assigned == PARAMETERS


def test_clean_rejects_noise_in_checked_cells():
    tool = clean_tool()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)")])
    cell = nb.cells[0]
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="run in /tmp/x\n")]
    with pytest.raises(ValueError, match="local path"):
        tool.clean(nb, "nb")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="2024 W tensorflow\n")]
    with pytest.raises(ValueError, match="stderr"):
        tool.clean(nb, "nb")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="17,256,181\n")]
    assert tool.clean(nb, "nb").cells[0].outputs[0].text == "17,256,181\n"
