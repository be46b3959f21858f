"""06_explore in a real browser: JupyterLab on localhost, driven through headless Chromium.

The test uses the session's smoke run, starts JupyterLab on a free port with a token and a fresh
configuration, opens a copy of 06_explore with widgets enabled (``MEDGAN_HEADLESS`` unset), runs
all cells from the Run menu, then changes the epoch dropdown and the seed box and waits for the
figure drawn by the kernel to change in the page. A screenshot of the explorer is written to
``test-artifacts/browser_06_explore.png`` in the repository (``..._failure.png`` when it fails).
It needs Chromium at ``/usr/bin/chromium`` (Debian's ``chromium``) and Playwright for Python,
which drives that binary; it skips, saying which is missing, without them.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from medgan_lib.notebook_helpers import ENV_DATA, ENV_HEADLESS, HEADLESS_NOTE, nbval_environment

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Front-end settings of the fresh JupyterLab: no news or update prompts over the page, and every
# cell kept in the DOM (no windowed rendering), so cells can be found wherever they are scrolled,
# and the notebook's own kernel started without asking.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                   "autoStartDefaultKernel": True},
}
SERVER_START_SECONDS, KERNEL_SECONDS, RUN_ALL_SECONDS, FIGURE_SECONDS, SHUTDOWN_SECONDS = 90, 90, 240, 90, 20

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                     "(pip install -r requirements.lock)")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium is not installed at {CHROMIUM} "
                                "(apt-get install chromium chromium-driver; .ci/run does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, token: str, method: str = "GET", timeout: float = 5) -> int:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


@contextlib.contextmanager
def jupyterlab(root: Path, state: Path, environment: dict[str, str]):
    """A JupyterLab server on a free localhost port serving ``root``, its configuration, settings and
    runtime files under ``state``. Yields (base URL, token) once it answers. Always shut down, kernels
    included."""
    token, port = secrets.token_hex(16), free_port()
    for name, values in LAB_SETTINGS.items():
        path = state / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**environment, "JUPYTER_CONFIG_DIR": str(state / "config"), "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "JUPYTER_PREFER_ENV_PATH": "1"}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True"]
    log = state / "jupyterlab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            assert server.poll() is None, f"JupyterLab exited:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(OSError):
                if api(f"{url}/api/status", token) == 200:
                    break
            assert time.monotonic() < deadline, f"JupyterLab not up after {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield url, token
    finally:
        with contextlib.suppress(OSError):
            api(f"{url}/api/shutdown", token, method="POST")
        try:
            server.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=SHUTDOWN_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # kernels left behind by a server that did not clean up


def lab_environment(run_dir: Path, data: str) -> dict[str, str]:
    """The environment of ``make test``'s notebooks on the smoke run in ``run_dir`` (trained on ``data``)
    with widgets enabled and this checkout importable."""
    env = {**os.environ, **nbval_environment(run_dir), ENV_DATA: data}
    del env[ENV_HEADLESS]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return env


def png_bytes(source: str | None) -> bytes:
    prefix = "data:image/png;base64,"
    assert source and source.startswith(prefix), f"not an inline PNG: {str(source)[:60]}"
    return base64.b64decode(source[len(prefix):])


# Evaluated in the page; JupyterLab runs with expose_app_in_browser, so window.jupyterapp is the app.
KERNEL_READY = """() => { const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return Boolean(kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'); }"""
ALL_CELLS_EXECUTED = """() => { const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)); }"""


def wait_until(page, done, seconds: float, what: str) -> None:
    """Poll ``done()`` for up to ``seconds``. Under load JupyterLab may ask which kernel to start (its
    kernel list not yet loaded when the notebook opened): the preselected one is accepted, as a user would."""
    choose = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + seconds
    while True:
        if choose.count():
            choose.locator(".jp-Dialog-button.jp-mod-accept").click()
        elif done():
            return
        assert time.monotonic() < deadline, f"{what} after {seconds} s"
        page.wait_for_timeout(250)


def test_explorer_widgets_redraw_the_figure_in_jupyterlab(smoke_run, smoke_run_data, tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "06_explore.ipynb", root)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = tmp_path / "browser_06_explore.png"
    expect = playwright_api.expect

    with jupyterlab(root, tmp_path / "state", lab_environment(smoke_run, smoke_run_data)) as (url, token), \
            playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000}, timeout=60_000)
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{url}/lab/tree/06_explore.ipynb?token={token}", wait_until="domcontentloaded")
            wait_until(page, lambda: page.evaluate(KERNEL_READY), KERNEL_SECONDS, "no idle kernel connected")
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            wait_until(page, lambda: page.evaluate(ALL_CELLS_EXECUTED), RUN_ALL_SECONDS, "Run All not finished")
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
            assert prompts.count() >= 10
            outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
            assert not [t for t in outputs if "Traceback" in t], "a cell failed"
            assert not [t for t in outputs if HEADLESS_NOTE in t], "the notebook ran headless"

            cell = page.locator(".jp-CodeCell", has_text="samples_controls = nh.explore")
            figure = cell.locator(".widget-output img").first
            expect(figure).to_be_visible(timeout=FIGURE_SECONDS * 1000)
            seen = [figure.get_attribute("src")]

            def redrawn() -> None:
                expect(figure).not_to_have_attribute("src", seen[-1], timeout=FIGURE_SECONDS * 1000)
                seen.append(figure.get_attribute("src"))

            epoch = cell.locator(".widget-dropdown select")
            labels = epoch.locator("option").all_inner_texts()
            assert len(labels) >= 2
            assert epoch.evaluate("s => s.options[s.selectedIndex].text") == labels[-1]
            epoch.select_option(label=labels[0])
            redrawn()
            seed = cell.locator(".widget-text input")
            seed.fill("7")
            seed.press("Enter")
            redrawn()
            assert len({png_bytes(s) for s in seen}) == 3, "each control change draws a new figure"
            assert not cell.locator('.widget-output [data-mime-type="application/vnd.jupyter.stderr"]').count()

            cell.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot))
            shutil.copy(screenshot, ARTIFACTS / screenshot.name)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_06_explore_failure.png"))
            raise
        finally:
            browser.close()
    assert (ARTIFACTS / screenshot.name).stat().st_size > 10_000
