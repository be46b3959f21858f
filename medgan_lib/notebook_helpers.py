"""What is about notebooks only: their papermill parameters, the discriminator banner, headless
runs and the explorer's widgets. Reading a run directory is :mod:`medgan_lib.rundir`; drawing
from a generator is :mod:`medgan_lib.sampling`.

Parameters: every notebook has a papermill ``parameters`` cell with ``preset``, ``data``,
``epochs``, ``run_dir`` and ``seed``. Their defaults come from the environment variables
``MEDGAN_PRESET`` (default ``cpu``), ``MEDGAN_DATA`` (``phantom``) and ``MEDGAN_RUN_DIR``
(``../runs/<preset>``, i.e. the repository's ``runs/<preset>`` seen from ``notebooks/``), so
``make reproduce`` passes them with papermill ``-p``, and ``make test`` (nbval, which cannot pass
parameters) sets the environment in ``notebooks/conftest.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .config import Config, preset as get_preset
from .progress import ENV_HEADLESS, headless  # noqa: F401 (part of this module's interface)
from .rundir import read_provenance

ENV_PRESET, ENV_DATA, ENV_RUN_DIR = "MEDGAN_PRESET", "MEDGAN_DATA", "MEDGAN_RUN_DIR"
# ENV_HEADLESS, set by `make reproduce` and by nbval's conftest: no widget is created. Executing a cell that opens
# widget comms and an interactive output can hang nbclient/papermill for good (kernel and client both
# idle; seen here in 1 of 6 runs of 06_explore; jupyter/nbclient#312, jupyter/nbconvert#2029).
HEADLESS_NOTE = "headless run: no controls here (open the notebook in JupyterLab, `make lab`); static view below"


def env_default(name: str, default: str | None) -> str | None:
    """``os.environ[name]`` if set and non-empty, else ``default``."""
    return os.environ.get(name) or default


def nbval_environment(run_dir: str | os.PathLike) -> dict[str, str]:
    """The environment under which ``make test`` runs the notebooks with nbval (smoke preset).

    ``notebooks/conftest.py`` applies it, and ``tools/clean_notebooks.py --refresh`` executes the
    notebooks under it to store the outputs nbval compares against.
    """
    return {ENV_PRESET: "smoke", ENV_DATA: "phantom", ENV_RUN_DIR: str(run_dir), ENV_HEADLESS: "1",
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def prepare_smoke_run(run_dir: str | os.PathLike) -> Path:
    """Train (or reuse) the smoke run that notebooks 04-06 read when 03 is not executed first."""
    from .runs import train

    return train(get_preset("smoke"), run_dir, progress=False)


def notebook_config(preset: str, data: str = "phantom", epochs: int | None = None, seed: int | None = None,
                    run_dir: str | os.PathLike | None = None) -> tuple[Config, Path]:
    """The run configuration and run directory for a notebook's parameters.

    ``epochs``/``seed`` None keep the preset's; ``run_dir`` None is ``../runs/<preset>`` relative
    to the working directory (the notebook's folder in JupyterLab).
    """
    changes = {"data": data}
    if epochs is not None:
        changes["epochs"] = int(epochs)
    if seed is not None:
        changes["seed"] = int(seed)
    config = get_preset(preset).replace(**changes)
    path = Path(run_dir) if run_dir else Path("..") / "runs" / preset
    return config, path.expanduser().resolve()


def describe_config(config: Config) -> str:
    """One line with what a preset trains."""
    size = f"{config.image_size}x{config.image_size}x{config.channels}"
    return (f"preset {config.preset}: data {config.data}, {config.epochs} epochs, {size} images, "
            f"batch {config.batch_size}, latent {config.latent_dim}, generator width x{config.width}, "
            f"discriminator {config.d_mode} {config.backbone}, G loss {config.g_loss}, seed {config.seed}")


def discriminator_banner(run_dir: str | os.PathLike) -> tuple[str, bool]:
    """(banner text, whether it is the paper's transfer method) for a run."""
    from .discriminator import DiscriminatorInfo
    from .runs import announce_discriminator

    record = read_provenance(run_dir)["discriminator"]
    fields = DiscriminatorInfo.__dataclass_fields__
    info = DiscriminatorInfo(**{k: v for k, v in record.items() if k in fields})
    text = announce_discriminator(info)
    is_paper_method = not info.is_variant and info.mode == "transfer"
    if not is_paper_method:
        instead = ("uses a project variant instead (README, 'Discriminator variants')" if info.is_variant else
                   "trains the whole backbone from random weights instead (see README / data_README.md)")
        text += ("\nThe paper's discriminator is a FROZEN ImageNet backbone with a 2,048-parameter head; "
                 f"this run {instead}.")
    return text, is_paper_method


# ----------------------------------------------------------------------------- explorer controls


def choice(options: list, value=None):
    """A dropdown control (default: the last option), made by :func:`explore`."""
    import ipywidgets as widgets

    return lambda name: widgets.Dropdown(options=options, value=options[-1] if value is None else value,
                                         description=name)


def integer(value: int, low: int | None = None, high: int | None = None):
    """An integer control: a slider when bounded, else a text box; made by :func:`explore`."""
    import ipywidgets as widgets

    if low is None:
        return lambda name: widgets.IntText(value=value, description=name)
    return lambda name: widgets.IntSlider(value=value, min=low, max=high, description=name)


def explore(view, **controls) -> dict | None:
    """Controls for the keyword arguments of ``view`` and an output area that shows
    ``view(**values)`` whenever one changes (JupyterLab). Headless (see ``ENV_HEADLESS``) it creates
    no widget and prints ``HEADLESS_NOTE``. Returns the controls by name (None when headless)."""
    if headless():
        print(HEADLESS_NOTE)
        return None
    import ipywidgets as widgets
    from IPython.display import display

    made = {name: make(name.replace("_", " ")) for name, make in controls.items()}
    display(widgets.HBox(list(made.values())),
            widgets.interactive_output(lambda **values: display(view(**values)), made))
    return made
