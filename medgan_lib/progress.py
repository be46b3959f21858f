"""Progress bars that never open a widget where no front end can show one.

``tqdm.auto`` draws a Jupyter widget inside a kernel, which opens a comm; under papermill and
nbval (``make reproduce`` and ``make test`` set ``MEDGAN_HEADLESS=1``) nothing renders it, and
widget traffic has hung papermill here. Headless runs get the plain terminal bar instead.
"""
from __future__ import annotations

import os

ENV_HEADLESS = "MEDGAN_HEADLESS"


def headless() -> bool:
    """Whether this process runs without a front end that can show widgets (``MEDGAN_HEADLESS=1``)."""
    return os.environ.get(ENV_HEADLESS) == "1"


def progress_bar_class() -> type:
    """The plain terminal ``tqdm`` when headless, else ``tqdm.auto`` (a widget in a live notebook)."""
    if headless():
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm
