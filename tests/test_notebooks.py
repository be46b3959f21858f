"""The committed notebooks: clean, parameterised for papermill, and checked by nbval.

Executing them is nbval's job (``make test`` runs ``pytest --nbval-lax notebooks/``); these tests
only read the files, so they are fast.
"""
import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

from medgan_lib.config import preset

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETERS = {"preset", "data", "epochs", "run_dir", "seed"}
# The notebooks that show the recommended run beside the paper-method run, and those that read the latter.
TWO_RUNS = {"03_training", "04_loss_dynamics", "05_epoch_table", "07_evaluation"}
READS_THE_RUN = TWO_RUNS | {"06_explore"}


def clean_tool():
    spec = importlib.util.spec_from_file_location("clean_notebooks", REPO / "tools" / "clean_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_paper_notebooks_come_first_in_order():
    assert [p.stem for p in NOTEBOOKS][:6] == [
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
    expected = (PARAMETERS | ({"recommended_preset", "recommended_run_dir"} if path.stem in TWO_RUNS else set())
                | ({"fallback_epochs"} if path.stem in READS_THE_RUN else set()))
    assert assigned == expected


def test_make_reproduce_passes_the_recommended_run_to_the_notebooks_that_show_it():
    import re

    makefile = (REPO / "Makefile").read_text()
    listed = re.search(r"^TWO_RUN_NOTEBOOKS := (.*)$", makefile, re.M).group(1).split()
    assert set(listed) == TWO_RUNS
    fallback = re.search(r'case " (.*) " in \*" \$\$name "\*\) set -- "\$\$@" -p fallback_epochs', makefile).group(1)
    assert set(fallback.replace("$(TWO_RUN_NOTEBOOKS)", " ".join(listed)).split()) == READS_THE_RUN


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


def run_explorer(run_dir: Path, data: str, headless: bool):
    """Start a kernel in the nbval environment on the smoke run in ``run_dir`` (trained on ``data``;
    widgets live unless ``headless``), run 06_explore's code cells in it; (kernel manager, client,
    iopub message types seen)."""
    import os

    from jupyter_client.manager import start_new_kernel

    from medgan_lib.notebook_helpers import ENV_DATA, ENV_HEADLESS, nbval_environment

    saved = dict(os.environ)
    os.environ.update({**nbval_environment(run_dir), ENV_DATA: data})
    if not headless:
        del os.environ[ENV_HEADLESS]
    try:
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(REPO / "notebooks"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    seen = []
    nb = nbformat.read(REPO / "notebooks" / "06_explore.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            reply = kc.execute_interactive(cell.source, timeout=300, output_hook=lambda msg: seen.append(msg["msg_type"]))
            assert reply["content"]["status"] == "ok", reply["content"]
    return km, kc, seen


def test_headless_explorer_opens_no_widget(smoke_run, smoke_run_data):
    """make reproduce / make test run 06_explore headless: no widget comm is opened (widget cells can
    hang nbclient), and the static figures are still drawn."""
    km, kc, seen = run_explorer(smoke_run, smoke_run_data, headless=True)
    try:
        assert "comm_open" not in seen
        assert seen.count("display_data") + seen.count("execute_result") >= 3
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_explorer_widgets_respond(smoke_run, smoke_run_data):
    """06_explore's controls work as in JupyterLab: the notebook runs in a kernel, then the comm
    'update' a browser sends when the user picks another epoch makes the kernel draw a new figure
    into the widget's output area."""
    km, kc, seen = run_explorer(smoke_run, smoke_run_data, headless=False)
    quiet = lambda msg: None  # noqa: E731
    try:
        assert "comm_open" in seen

        def evaluate(expression):
            reply = kc.execute_interactive("", user_expressions={"x": expression}, timeout=60, output_hook=quiet)
            return reply["content"]["user_expressions"]["x"]["data"]["text/plain"]

        assert evaluate("samples_controls['epoch'].value") == "3"
        comm_id = evaluate("samples_controls['epoch'].comm.comm_id").strip("'")
        update = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
            "method": "update", "state": {"index": 0}, "buffer_paths": []}})
        kc.shell_channel.send(update)
        replies = []
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != update["header"]["msg_id"]:
                continue
            replies.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert not [m for m in replies if m["msg_type"] == "error"]
        figures = [m for m in replies if m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]]
        assert len(figures) == 1
        routed = [m for m in replies if m["msg_type"] == "comm_msg"
                  and m["content"]["data"].get("state", {}).get("msg_id") == update["header"]["msg_id"]]
        assert routed, "the figure is captured by the Output widget"
        assert evaluate("samples_controls['epoch'].value") == "1"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("kind, augment, mode, says", [
    ("paper", False, "transfer", None),
    ("paper", False, "scratch", "from random weights"),
    ("dcgan", False, "scratch", "project variant"),
    ("projected", True, "transfer", "project variant"),
])
def test_discriminator_banner_names_what_departs_from_the_paper(tmp_path, kind, augment, mode, says):
    import json

    from medgan_lib import notebook_helpers as nh

    record = {"requested_mode": "auto", "mode": mode, "backbone": "MobileNet", "alpha": 0.25,
              "weights": {"origin": "MEDGAN_WEIGHTS_DIR", "path": "w.h5"} if mode == "transfer" else None,
              "reason": "test", "backbone_input_size": [64, 64], "params": {}, "kind": kind,
              "diff_augment": augment}
    (tmp_path / "provenance.json").write_text(json.dumps({"discriminator": record}))
    (tmp_path / "config.json").write_text(preset("cpu").to_json())
    text, is_paper_method = nh.discriminator_banner(tmp_path)
    assert is_paper_method == (says is None)
    assert (says is None and "\n" not in text) or (says is not None and says in text)
    if kind != "paper":
        assert "whole backbone" not in text
    assert nh.OFFLINE_FALLBACK not in text
    fallback = preset("cpu").replace(epochs=60, notes=preset("cpu").notes + (f"epochs=60: {nh.OFFLINE_FALLBACK}: why",))
    (tmp_path / "config.json").write_text(fallback.to_json())
    assert nh.discriminator_banner(tmp_path)[0].endswith(f"\nepochs=60: {nh.OFFLINE_FALLBACK}: why")
