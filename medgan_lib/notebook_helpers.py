"""What the notebooks need beyond ``runs`` and ``figures``: resolving their papermill parameters,
reading a finished run (config, history, samples, generator checkpoints, discriminator banner)
and the explorer's latent-space utilities.

Parameters: every notebook has a papermill ``parameters`` cell with ``preset``, ``data``,
``epochs``, ``run_dir`` and ``seed``. Their defaults come from the environment variables
``MEDGAN_PRESET`` (default ``cpu``), ``MEDGAN_DATA`` (``phantom``) and ``MEDGAN_RUN_DIR``
(``../runs/<preset>``, i.e. the repository's ``runs/<preset>`` seen from ``notebooks/``), so
``make reproduce`` passes them with papermill ``-p``, and ``make test`` (nbval, which cannot pass
parameters) sets the environment in ``notebooks/conftest.py``.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from .config import Config, preset as get_preset

ENV_PRESET, ENV_DATA, ENV_RUN_DIR = "MEDGAN_PRESET", "MEDGAN_DATA", "MEDGAN_RUN_DIR"
# Set by `make reproduce` and by nbval's conftest: no widget is created. Executing a cell that opens
# widget comms and an interactive output can hang nbclient/papermill for good (kernel and client both
# idle; seen here in 1 of 6 runs of 06_explore; jupyter/nbclient#312, jupyter/nbconvert#2029).
ENV_HEADLESS = "MEDGAN_HEADLESS"
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


class RunNotReady(RuntimeError):
    """The run a notebook reads is missing, unfinished or configured differently."""


def figures_dir(run_dir: str | os.PathLike) -> Path:
    path = Path(run_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_config(run_dir: str | os.PathLike) -> Config:
    """The configuration recorded in a run directory."""
    return Config.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))


def require_finished_run(config: Config, run_dir: str | os.PathLike) -> list[dict]:
    """The history of the finished run of ``config`` in ``run_dir``; a clear error otherwise."""
    from .runs import read_history

    run_dir = Path(run_dir)
    hint = "run notebooks/03_training.ipynb (or `make reproduce`) with the same parameters first"
    if not (run_dir / "config.json").exists() or not (run_dir / "history.csv").exists():
        raise RunNotReady(f"no training run in {run_dir}: {hint}")
    recorded = run_config(run_dir).to_dict()
    wanted = config.to_dict()
    differences = [f"{k}: run has {recorded.get(k)!r}, notebook asks {wanted[k]!r}"
                   for k in wanted if recorded.get(k) != wanted[k]]
    if differences:
        raise RunNotReady(f"{run_dir} holds a run with another configuration ({'; '.join(differences)}); "
                          "use the same parameters as 03_training or another run_dir")
    history = read_history(run_dir / "history.csv")
    if len(history) < config.epochs:
        raise RunNotReady(f"{run_dir} has {len(history)} of {config.epochs} epochs: {hint} (it resumes)")
    return history


def discriminator_record(run_dir: str | os.PathLike) -> dict:
    """The discriminator entry of ``provenance.json`` (mode and weights actually used)."""
    return json.loads((Path(run_dir) / "provenance.json").read_text())["discriminator"]


def discriminator_banner(run_dir: str | os.PathLike) -> tuple[str, bool]:
    """(banner text, whether it is the paper's transfer method) for a run."""
    from .discriminator import DiscriminatorInfo
    from .runs import announce_discriminator

    record = discriminator_record(run_dir)
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


def sample_epochs(run_dir: str | os.PathLike) -> list[int]:
    """Epochs with saved fixed-noise samples (``samples/epoch_NNNN.npy``)."""
    return sorted(int(p.stem.split("_")[1]) for p in (Path(run_dir) / "samples").glob("epoch_*.npy"))


def load_samples(run_dir: str | os.PathLike) -> dict[int, np.ndarray]:
    """The fixed-noise samples of every snapshot epoch, images in [-1, 1]."""
    folder = Path(run_dir) / "samples"
    return {epoch: np.load(folder / f"epoch_{epoch:04d}.npy") for epoch in sample_epochs(run_dir)}


def checkpoint_epochs(run_dir: str | os.PathLike) -> list[int]:
    """Epochs with saved generator weights (``checkpoints/generator/epoch_NNNN.weights.h5``)."""
    from .runs import generator_snapshot_dir

    return sorted(int(p.name.split("_")[1].split(".")[0])
                  for p in generator_snapshot_dir(run_dir).glob("epoch_*.weights.h5"))


@functools.lru_cache(maxsize=4)
def _generator(run_dir: str, epoch: int):
    from .generator import build_generator
    from .runs import generator_snapshot_path

    model = build_generator(run_config(run_dir))
    load_weights_file(model, generator_snapshot_path(run_dir, epoch))
    return model


def load_weights_file(model, path: str | os.PathLike) -> None:
    """Load an ``.h5`` weights file written in either Keras format.

    Keras picks the reader by the file name: ``*.weights.h5`` means the v3 layout (a ``vars``
    tree), any other ``*.h5`` the legacy layout (one group per layer). Runs made before commit
    4f17543 hold the legacy layout under a ``.weights.h5`` name, so the layout is read from the
    file and a legacy file is loaded through a ``.h5`` symlink.
    """
    import tempfile

    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        v3 = "vars" in f or "layers" in f
    if v3 == path.name.endswith(".weights.h5"):
        model.load_weights(str(path))
        return
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / ("weights.weights.h5" if v3 else "weights.h5")
        link.symlink_to(path.resolve())
        model.load_weights(str(link))


def load_generator(run_dir: str | os.PathLike, epoch: int):
    """The run's generator with the weights saved after ``epoch`` (cached)."""
    if epoch not in checkpoint_epochs(run_dir):
        raise RunNotReady(f"no generator checkpoint for epoch {epoch} in {run_dir}; "
                          f"available: {checkpoint_epochs(run_dir)}")
    return _generator(str(Path(run_dir).resolve()), int(epoch))


def latent_batch(seed: int, n: int, latent_dim: int) -> np.ndarray:
    """``n`` latent vectors from N(0, 1), a function of ``seed`` only."""
    return np.random.default_rng([int(seed), 2]).standard_normal((n, latent_dim)).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical interpolation between two latent vectors (linear when they are parallel).

    Gaussian latents concentrate near a sphere, so the straight line between two of them passes
    through improbable short vectors; slerp stays at typical norms. Returns (positions, vectors).
    """
    t = np.linspace(0.0, 1.0, steps)
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        path = (1 - t)[:, None] * a + t[:, None] * b
    else:
        path = (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)
    return t, path.astype(np.float32)


def generate(model, z: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] for latent vectors ``z`` (inference mode)."""
    return np.asarray(model(np.asarray(z, np.float32), training=False))


def nearest_images(queries: np.ndarray, pool: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Indices and RMS pixel distances of the ``k`` nearest ``pool`` images to each query.

    A generated image that sits at distance ~0 from a training image is a memorised copy;
    the distance to the nearest real image also shows how far from the data a sample is.
    """
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    p = np.asarray(pool, np.float64).reshape(len(pool), -1)
    squared = (q**2).sum(1)[:, None] + (p**2).sum(1)[None, :] - 2.0 * q @ p.T
    rms = np.sqrt(np.maximum(squared, 0.0) / q.shape[1])
    k = min(k, len(p))
    indices = np.argsort(rms, axis=1, kind="stable")[:, :k]
    return indices, np.take_along_axis(rms, indices, axis=1)


# ----------------------------------------------------------------------------- explorer controls


def headless() -> bool:
    """Whether the notebook runs without a front end that can use widgets (``MEDGAN_HEADLESS=1``)."""
    return os.environ.get(ENV_HEADLESS) == "1"


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
