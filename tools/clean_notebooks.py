"""Keep the committed notebooks clean: no outputs except the expected ones of nbval-checked cells.

nbval (``make test``: ``pytest --nbval-lax``) compares the cells marked ``# NBVAL_CHECK_OUTPUT``
against the outputs stored in the committed notebook, so those outputs must be committed, and
nothing else should be (execution counts, figures, logs, widget state, local paths).

    python tools/clean_notebooks.py notebooks/*.ipynb            # strip everything else (make notebooks-clean)
    python tools/clean_notebooks.py --refresh notebooks/*.ipynb  # re-execute on the smoke preset exactly as
                                                                 # nbval does, store the checked cells' outputs,
                                                                 # strip the rest (make notebooks-outputs)
    python tools/clean_notebooks.py --check notebooks/*.ipynb    # exit 1 if a notebook is not clean

A kept output must be plain stdout or a text/plain result without local paths; anything else in a
checked cell (stderr, figures, paths) is an error: move it to an unchecked cell.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
NOTEBOOK_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
}
LOCAL_PATH = re.compile(r"(/tmp/|/work/|/home/|/root/|/Users/|/var/folders/|[A-Za-z]:\\)")


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARKER)


def clean_output(output, where: str) -> dict:
    """A kept output reduced to what nbval compares; errors on anything that must not be committed."""
    if output.output_type == "stream":
        if output.name != "stdout":
            raise ValueError(f"{where}: a checked cell writes to {output.name}: {output.text[:200]!r}")
        text = output.text
        kept = nbformat.v4.new_output("stream", name="stdout", text=text)
    elif output.output_type == "execute_result" and set(output.data) == {"text/plain"}:
        text = output.data["text/plain"]
        kept = nbformat.v4.new_output("execute_result", data={"text/plain": text}, execution_count=None)
    else:
        kinds = list(output.get("data", {})) or [output.output_type]
        raise ValueError(f"{where}: a checked cell has a {output.output_type} output {kinds}; keep checked "
                         "cells to printed text")
    if LOCAL_PATH.search(text):
        raise ValueError(f"{where}: a checked output contains a local path: {text[:200]!r}")
    return kept


def clean(nb, name: str, outputs: dict[str, tuple[int, list]] | None = None):
    """A clean copy of ``nb``; ``outputs`` maps a checked cell's id to a fresh (count, outputs) to store.

    Checked cells keep their execution count (nbval skips the comparison of a cell stored as
    never run, and refuses one with outputs but no count): it is the cell's position among the
    code cells, the same on every run in order."""
    nb = copy.deepcopy(nb)
    nb.metadata = copy.deepcopy(NOTEBOOK_METADATA)
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            if outputs is not None:
                if cell.id not in outputs:
                    raise ValueError(f"{name} cell {index}: no executed output found for checked cell {cell.id}")
                cell.execution_count, cell.outputs = outputs[cell.id]
            cell.outputs = [clean_output(o, f"{name} cell {index}") for o in cell.outputs]
            if not cell.outputs or cell.execution_count is None:
                raise ValueError(f"{name} cell {index}: checked cell without stored output; run with --refresh")
        else:
            cell.execution_count = None
            cell.outputs = []
    nbformat.validate(nb)
    return nb


def execute_smoke(path: Path, run_dir: str) -> dict[str, tuple[int, list]]:
    """Execute a notebook as nbval does (smoke environment, cwd = notebooks/).

    Returns (execution count, outputs) of every checked cell, by cell id.
    """
    from nbclient import NotebookClient

    from medgan_lib.notebook_helpers import nbval_environment

    os.environ.update(nbval_environment(run_dir))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return {cell.id: (cell.execution_count, cell.outputs) for cell in nb.cells if is_checked(cell)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report notebooks that are not clean; change nothing")
    mode.add_argument("--refresh", action="store_true",
                      help="re-execute on the smoke preset (as nbval does) and store the checked outputs")
    args = parser.parse_args(argv)

    dirty = []
    with tempfile.TemporaryDirectory(prefix="medgan_nb_") as tmp:
        for path in sorted(args.notebooks):
            original = path.read_text()
            nb = nbformat.reads(original, as_version=4)
            outputs = None
            if args.refresh and not any(p.name.startswith("03_") for p in args.notebooks):
                from medgan_lib.notebook_helpers import prepare_smoke_run

                prepare_smoke_run(Path(tmp) / "run")
            if args.refresh:
                print(f"executing {path} on the smoke preset", file=sys.stderr)
                outputs = execute_smoke(path, str(Path(tmp) / "run"))
            try:
                cleaned = nbformat.writes(clean(nb, str(path), outputs)) + "\n"
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            if cleaned != original:
                dirty.append(path)
                if not args.check:
                    path.write_text(cleaned)
    verb = "not clean" if args.check else "rewritten"
    for path in dirty:
        print(f"{verb}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
