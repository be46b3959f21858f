"""How the project is installed and cited: environment.yml, requirements.lock, pyproject, CITATION.cff.

The conda environment (also what repo2docker / Binder build) must give the notebooks everything
they import, medgan_lib included. conda and the network are not available to the tests, so the
fresh-environment test builds a plain venv holding exactly what environment.yml's pip section
lists: the pinned distributions of ``-r`` files, taken file by file from this environment (their
versions must equal the pins) instead of downloaded, and the ``-e`` project installed editable by pip.
"""
import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def pip_lines() -> list[str]:
    """The entries of environment.yml's pip section."""
    sections = [d["pip"] for d in environment()["dependencies"] if isinstance(d, dict)]
    assert len(sections) == 1, "environment.yml has one pip section"
    return [str(line).strip() for line in sections[0]]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """``name == version`` lines of a requirements file, by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"{path.name}: {line!r} is not pinned"
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement_name(spec: str) -> str:
    return canonical(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])


def test_environment_pins_the_project_python_and_installs_lock_and_project():
    conda = [d for d in environment()["dependencies"] if isinstance(d, str)]
    assert sorted(conda) == ["pip", "python=3.11"], "everything else comes from requirements.lock"
    assert pyproject()["project"]["requires-python"] == ">=3.11,<3.12"
    assert pip_lines() == ["-r requirements.lock", "-e ."]


def test_lock_pins_every_dependency_pyproject_declares():
    pins = read_pins(REPO / "requirements.lock")
    project = pyproject()["project"]
    declared = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    missing = sorted({requirement_name(s) for s in declared} - set(pins))
    assert not missing, f"declared in pyproject.toml but not pinned in requirements.lock: {missing}"
    for spec in declared:
        if "==" in spec:
            name, version = spec.split("==")
            assert pins[requirement_name(name)] == version, f"pyproject {spec} vs lock {pins[requirement_name(name)]}"


def notebook_imports() -> set[str]:
    """Every module the committed notebooks import (top-level ``import``/``from`` statements)."""
    modules = set()
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Import):
                    modules.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules.add(node.module)
    return modules


def top_level_owners() -> dict[tuple[str, str], set[str]]:
    """For every top-level entry of every install location here, the distributions with files in it."""
    owners: dict[tuple[str, str], set[str]] = {}
    for dist in importlib.metadata.distributions():
        root, name = str(dist.locate_file("")), canonical(dist.metadata["Name"])
        for entry in dist.files or []:
            if entry.parts[0] != "..":
                owners.setdefault((root, entry.parts[0]), set()).add(name)
    return owners


def link_distribution(name: str, version: str, site_packages: Path, owners: dict) -> int:
    """Symlink the installed files of distribution ``name`` (which must be at ``version``) into
    ``site_packages``: whole top-level folders it alone owns, file by file where it shares one
    (a namespace package); the number of links made."""
    dist = importlib.metadata.distribution(name)
    assert dist.version == version, f"{name} is {dist.version} here, the lock pins {version}"
    root = Path(dist.locate_file(""))
    linked = 0
    for entry in dist.files or []:
        if entry.parts[0] == ".." or "__pycache__" in entry.parts:
            continue  # console scripts and byte code
        alone = owners[(str(root), entry.parts[0])] == {canonical(name)}
        relative = Path(entry.parts[0]) if alone else Path(entry)
        source, target = root / relative, site_packages / relative
        if source.exists() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
            linked += 1
    return linked


def test_a_venv_of_what_environment_yml_lists_imports_medgan_lib_from_notebooks(tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / "bin" / "python"
    site_packages = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip())
    linked, editable, owners = 0, [], top_level_owners()
    for line in pip_lines():
        option, _, argument = line.partition(" ")
        if option == "-r":
            for name, version in read_pins(REPO / argument).items():
                linked += link_distribution(name, version, site_packages, owners)
        elif option == "-e":
            editable.append((REPO / argument).resolve())
        else:
            pytest.fail(f"environment.yml pip entry {line!r} is not handled by this test")
    assert linked > 100 and editable == [REPO]
    # --ignore-installed: without it pip uninstalls the running environment's own medgan (the one
    # `make test` goes on to use for nbval) before installing into --prefix.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--ignore-installed", "--prefix", env_dir, "-e", REPO],
                   check=True, capture_output=True)

    modules = sorted(notebook_imports())
    assert {"medgan_lib", "os"} <= {m.split(".")[0] for m in modules}
    probe = ("import importlib, json, sys\n"
             f"for name in {modules!r}: importlib.import_module(name)\n"
             "import medgan_lib\n"
             "print(json.dumps({'medgan_lib': medgan_lib.__file__, 'path': sys.path}))")
    result = subprocess.run([python, "-c", probe], cwd=REPO / "notebooks", capture_output=True, text=True,
                            timeout=300, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
                                              "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert Path(found["medgan_lib"]).resolve() == REPO / "medgan_lib" / "__init__.py"
    assert not [p for p in found["path"] if p.startswith(sys.prefix)], "nothing of the test's own environment"


def test_citation_cff_is_valid_and_cites_the_paper():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert citation[key], f"CITATION.cff needs {key!r}"
    assert citation["version"] == pyproject()["project"]["version"]
    paper = citation["preferred-citation"]
    assert paper["type"] == "article"
    assert paper["title"] == "Research of generative adversarial networks for the synthesis of new medical data"
    assert [a["family-names"] for a in paper["authors"]] == ["Laptev", "Gerget", "Danilov"]
    for person in citation["authors"] + paper["authors"]:
        assert person.get("family-names") or person.get("name"), person
    assert citation["license"] == "BSD-3-Clause"
    assert (REPO / "LICENSE").read_text().startswith("BSD 3-Clause License")
