"""What is about notebooks only: their papermill parameters, the discriminator banner, headless
runs and the explorer's widgets. Reading a run directory is :mod:`medgan_lib.rundir`; drawing
from a generator is :mod:`medgan_lib.sampling`.

Parameters: every notebook has a papermill ``parameters`` cell with ``preset``, ``data``,
``epochs``, ``run_dir`` and ``seed``. Their defaults come from the environment variables
``MEDGAN_PRESET`` (default ``cpu``), ``MEDGAN_DATA`` (``phantom``) and ``MEDGAN_RUN_DIR``
(``../runs/<preset>``, i.e. the repository's ``runs/<preset>`` seen from ``notebooks/``), so
``make reproduce`` passes them with papermill ``-p``, and ``make test`` (nbval, which cannot pass
parameters) sets the environment in ``notebooks/conftest.py``.

The notebooks that show two runs side by side (:func:`notebook_runs`) also take
``recommended_preset`` / ``recommended_run_dir`` (``MEDGAN_RECOMMENDED_PRESET``, default
``medgan``; ``MEDGAN_RECOMMENDED_RUN_DIR``, default ``../runs/<recommended_preset>``; an empty
string shows only the ``preset`` run), and every notebook that reads the ``preset`` run takes
``fallback_epochs`` (see :func:`offline_fallback`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import Config, preset as get_preset
from .progress import ENV_HEADLESS, headless  # noqa: F401 (part of this module's interface)
from .rundir import figures_dir, read_config, read_provenance, require_finished_run

ENV_PRESET, ENV_DATA, ENV_RUN_DIR = "MEDGAN_PRESET", "MEDGAN_DATA", "MEDGAN_RUN_DIR"
ENV_RECOMMENDED_PRESET, ENV_RECOMMENDED_RUN_DIR = "MEDGAN_RECOMMENDED_PRESET", "MEDGAN_RECOMMENDED_RUN_DIR"
RECOMMENDED_PRESET = "medgan"  # the project's recommended method, shown first beside the paper's
NBVAL_RECOMMENDED_PRESET = "medgan_smoke"  # the same at the smoke preset's scale
# Epochs of a run whose "auto" discriminator finds no ImageNet file: its scratch backbone learns
# nothing at CPU scale (measured: D wins from about epoch 20, samples noise at epoch 100), so the
# paper's 600 epochs would cost 30-50 minutes for nothing; make reproduce's FALLBACK_EPOCHS.
FALLBACK_EPOCHS = 60
OFFLINE_FALLBACK = "OFFLINE FALLBACK"
# ENV_HEADLESS, set by `make reproduce` and by nbval's conftest: no widget is created. Executing a cell that opens
# widget comms and an interactive output can hang nbclient/papermill for good (kernel and client both
# idle; seen here in 1 of 6 runs of 06_explore; jupyter/nbclient#312, jupyter/nbconvert#2029).
HEADLESS_NOTE = "headless run: no controls here (open the notebook in JupyterLab, `make lab`); static view below"


def env_default(name: str, default: str | None) -> str | None:
    """``os.environ[name]`` if set and non-empty, else ``default``."""
    return os.environ.get(name) or default


def recommended_nbval_run_dir(run_dir: str | os.PathLike) -> Path:
    """Where nbval keeps the recommended run: beside the smoke run ``run_dir`` (``<run_dir>_recommended``)."""
    path = Path(run_dir)
    return path.with_name(path.name + "_recommended")


def nbval_environment(run_dir: str | os.PathLike) -> dict[str, str]:
    """The environment under which ``make test`` runs the notebooks with nbval: the smoke preset in
    ``run_dir`` and the recommended method at smoke scale beside it.

    ``notebooks/conftest.py`` applies it, and ``tools/clean_notebooks.py --refresh`` executes the
    notebooks under it to store the outputs nbval compares against.
    """
    return {ENV_PRESET: "smoke", ENV_DATA: "phantom", ENV_RUN_DIR: str(run_dir), ENV_HEADLESS: "1",
            ENV_RECOMMENDED_PRESET: NBVAL_RECOMMENDED_PRESET,
            ENV_RECOMMENDED_RUN_DIR: str(recommended_nbval_run_dir(run_dir)), "TF_CPP_MIN_LOG_LEVEL": "3"}


def prepare_smoke_run(run_dir: str | os.PathLike) -> Path:
    """Train (or reuse) the two nbval runs that notebooks 04-07 read when 03 is not executed first
    (the recommended one beside ``run_dir``); returns ``run_dir``."""
    from .runs import train

    train(get_preset(NBVAL_RECOMMENDED_PRESET), recommended_nbval_run_dir(run_dir), progress=False)
    return train(get_preset("smoke"), run_dir, progress=False)


def offline_fallback(config: Config, epochs: int) -> Config:
    """``config`` cut to ``epochs`` epochs, with a note saying why, when its discriminator is in mode
    "auto" and finds no ImageNet file (it would train a scratch backbone); otherwise ``config``.

    The check is the one training makes (:func:`medgan_lib.pretrained.discriminator_weights`).
    """
    from .pretrained import FALLBACK, discriminator_weights

    if epochs >= config.epochs or discriminator_weights(config)[0] != FALLBACK:
        return config
    note = (f"epochs={epochs}: {OFFLINE_FALLBACK}: no ImageNet file for the discriminator's {config.backbone}, "
            "so mode 'auto' trains that backbone from random weights (not the paper's method), which learns "
            f"nothing at this scale; {epochs} epochs instead of the preset's {config.epochs} keep the run short")
    return config.replace(epochs=int(epochs), notes=config.notes + (note,))


def notebook_config(preset: str, data: str = "phantom", epochs: int | None = None, seed: int | None = None,
                    run_dir: str | os.PathLike | None = None,
                    fallback_epochs: int | None = None) -> tuple[Config, Path]:
    """The run configuration and run directory for a notebook's parameters.

    ``epochs``/``seed`` None keep the preset's; ``run_dir`` None is ``../runs/<preset>`` relative
    to the working directory (the notebook's folder in JupyterLab). With ``epochs`` None and
    ``fallback_epochs`` given, :func:`offline_fallback` may shorten the run.
    """
    changes = {"data": data}
    if epochs is not None:
        changes["epochs"] = int(epochs)
    if seed is not None:
        changes["seed"] = int(seed)
    config = get_preset(preset).replace(**changes)
    if epochs is None and fallback_epochs is not None:
        config = offline_fallback(config, int(fallback_epochs))
    path = Path(run_dir) if run_dir else Path("..") / "runs" / preset
    return config, path.expanduser().resolve()


# ----------------------------------------------------------------------------- two runs side by side


@dataclass(frozen=True)
class NotebookRun:
    """One run a notebook shows: its configuration and directory."""

    config: Config
    run_dir: Path

    @property
    def method(self) -> str:
        """"paper" for the paper's generator and discriminator architecture, else "recommended"."""
        paper = self.config.generator == "paper" and self.config.discriminator == "paper"
        return "paper" if paper else "recommended"

    @property
    def label(self) -> str:
        """``"medgan preset (recommended method)"``, ``"cpu preset (paper method)"``: for titles and headings."""
        return f"{self.config.preset} preset ({self.method} method)"

    @property
    def figures(self) -> Path:
        """The run's ``figures/`` directory."""
        return figures_dir(self.run_dir)

    def history(self) -> list[dict]:
        """The finished run's history (``RunNotReady`` if 03_training has not trained it)."""
        return require_finished_run(self.config, self.run_dir)


def notebook_runs(preset: str, data: str, epochs: int | None, seed: int | None, run_dir: str | os.PathLike | None,
                  recommended_preset: str | None, recommended_run_dir: str | os.PathLike | None,
                  fallback_epochs: int | None = None) -> list[NotebookRun]:
    """The runs a notebook shows, the recommended one first.

    ``recommended_preset`` in ``recommended_run_dir`` (None: ``../runs/<recommended_preset>``; an
    empty preset or directory: no recommended run), then ``preset`` in ``run_dir``; ``data``,
    ``epochs`` and ``seed`` apply to both, ``fallback_epochs`` as in :func:`notebook_config`. A run
    directory named twice is shown once.
    """
    runs = []
    if recommended_preset and recommended_run_dir != "":
        runs.append(NotebookRun(*notebook_config(recommended_preset, data, epochs, seed, recommended_run_dir,
                                                 fallback_epochs)))
    paper = NotebookRun(*notebook_config(preset, data, epochs, seed, run_dir, fallback_epochs))
    return runs + [paper] if all(run.run_dir != paper.run_dir for run in runs) else runs


def per_run_text(runs: list[NotebookRun], text: Callable[[NotebookRun], str]) -> str:
    """``text(run)`` for every run under a heading with its label, in order."""
    return "\n\n".join(f"== {run.label}\n{text(run)}" for run in runs)


def show_per_run(runs: list[NotebookRun], draw: Callable[[NotebookRun], object], name: str) -> None:
    """For every run in order: the figure ``draw(run)``, its title prefixed with the run's label,
    saved as ``name`` in the run's ``figures/`` and displayed."""
    from IPython.display import display

    from .figures import figure_labels, save_figure

    for run in runs:
        fig = draw(run)
        title = figure_labels(fig)["suptitle"]
        fig.suptitle(f"{run.label}: {title}" if title else run.label, fontweight="bold")
        save_figure(fig, run.figures, name)
        display(fig)


def describe_config(config: Config) -> str:
    """One line with what a preset trains."""
    size = f"{config.image_size}x{config.image_size}x{config.channels}"
    generator = "" if config.generator == "paper" else f"{config.generator} "
    discriminator = (f"{config.d_mode} {config.backbone}" if config.discriminator in ("paper", "projected")
                     else f"{config.discriminator} (no backbone)")
    return (f"preset {config.preset}: data {config.data}, {config.epochs} epochs, {size} images, "
            f"batch {config.batch_size}, latent {config.latent_dim}, generator {generator}width x{config.width}, "
            f"discriminator {discriminator}, G loss {config.g_loss}, seed {config.seed}")


def train_runs(runs: list[NotebookRun]) -> None:
    """Train each run in order; a finished run is reused, an interrupted one resumed (``runs.train``)."""
    from .runs import train

    for run in runs:
        print(f"== {run.label}: {run.run_dir}", flush=True)
        train(run.config, run.run_dir)


def training_summary(run: NotebookRun) -> str:
    """How many epochs the finished run has, and after which ones its fixed-noise samples were saved."""
    from .rundir import sample_epochs

    return (f"history.csv: {len(run.history())} of {run.config.epochs} epochs; "
            f"fixed-noise samples saved after epochs {sample_epochs(run.run_dir)}")


def last_epochs_text(run: NotebookRun, n: int = 5) -> str:
    """The last ``n`` rows of the run's history.csv and its total training time."""
    from .tables import format_table

    history = run.history()
    last = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in history[-n:]]
    return (format_table(last, "last epochs of history.csv") +
            f"\ntraining time: {sum(row['seconds'] for row in history) / 60:.1f} min over {len(history)} epochs")


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
    text += "".join(f"\n{note}" for note in read_config(run_dir).notes if OFFLINE_FALLBACK in note)
    return text, is_paper_method


def banner_html(run: NotebookRun) -> str:
    """The run's label and :func:`discriminator_banner` as a coloured box: green for the paper's
    transfer method, blue for the recommended method, red for a paper-method run without it."""
    banner, is_paper_method = discriminator_banner(run.run_dir)
    color = "#e6f4e6" if is_paper_method else "#e3ecfa" if run.method == "recommended" else "#fde2e1"
    return (f'<div style="background:{color};border:2px solid #555;padding:8px;font-weight:bold">'
            f"{run.label}<br>" + banner.replace("\n", "<br>") + "</div>")


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
