"""Check, in a real browser, that the notebooks open and run in JupyterLab 4 with working ipywidgets 8.

Why: papermill and the tests execute notebooks without a front end, so they cannot see a widget
that fails to render ("Error displaying widget", "Loading widget...") or a button that does
nothing. This script starts JupyterLab from the project's venv, drives headless Chromium with
Playwright, runs every cell, and for the ablation explorer (notebook 06) also uses the panel:
it ticks a checkbox, clicks **Run** and checks that the results table gains a row and the plot
is redrawn.

Nothing is written into the committed notebooks or figures/: each notebook is run from a
temporary copy (``notebooks/_jlcheck_NN.ipynb``, deleted at the end) whose parameters cell has
``SMOKE = True`` and FIGURES_DIR / RUNS_DIR / PROCESSED_DIR pointing into a temporary folder.
JupyterLab settings and workspaces also live in that folder.

Needs Playwright in its own venv and a system Chromium (no ``playwright install``)::

    apt-get install -y chromium
    python3 -m venv /tmp/pwvenv && /tmp/pwvenv/bin/pip install playwright
    /tmp/pwvenv/bin/python tools/check_jupyterlab.py            # notebook 06 with its widget panel
    /tmp/pwvenv/bin/python tools/check_jupyterlab.py --all      # every numbered notebook, in order

Screenshots and the server log go to ``--out`` (default /tmp/jlcheck). Exits 1 with a message on the first failed check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # say what to install instead of a traceback
    sys.exit(
        "check_jupyterlab needs Playwright, in its own venv: python3 -m venv /tmp/pwvenv && "
        "/tmp/pwvenv/bin/pip install playwright; then run this script with /tmp/pwvenv/bin/python"
    )

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = ROOT / ".venv" / "bin" / "jupyter"  # the kit's venv (`make setup`); --jupyter overrides
ALL = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # every numbered notebook
WIDGET_FAILURES = ("Error displaying widget", "Loading widget...")
# JupyterLab settings for the run: every cell in the DOM (no windowing), no news/update toasts
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


# share of an <img>'s pixels that are not near-white (a blank plot is ~0)
INK = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
  let ink = 0; for (let i = 0; i < d.length; i += 4) if (Math.min(d[i], d[i + 1], d[i + 2]) < 230) ink++;
  return ink / (c.width * c.height); }"""


class CheckFailed(Exception):
    pass


def check(ok, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


# -- server ---------------------------------------------------------------------------------
class Lab:
    """A JupyterLab server on a free local port, with its settings in ``tmp``."""

    def __init__(self, tmp: Path, log: Path, jupyter: Path = JUPYTER):
        self.jupyter = jupyter
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = secrets.token_hex(16)
        for plugin, values in SETTINGS.items():
            path = tmp / "settings" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        cmd = [
            str(self.jupyter),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={ROOT}",
            f"--LabServerApp.user_settings_dir={tmp / 'settings'}",
            f"--LabServerApp.workspaces_dir={tmp / 'workspaces'}",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = log
        self.proc = subprocess.Popen(cmd, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.time() + 90
        while True:
            try:
                self.api("status")
                break
            except OSError:
                check(
                    self.proc.poll() is None and time.time() < deadline,
                    f"JupyterLab did not start; log: {self.log_path}",
                )
                time.sleep(1)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET"):
        with urllib.request.urlopen(urllib.request.Request(self.url(f"api/{path}"), method=method), timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernels_idle(self) -> bool:
        kernels = self.api("kernels")
        return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)

    def shutdown_sessions(self) -> None:
        for s in self.api("sessions"):
            self.api(f"sessions/{s['id']}", method="DELETE")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.shutdown_sessions()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- notebook copies ------------------------------------------------------------------------
def smoke_copy(name: str, tmp: Path) -> Path:
    """``notebooks/_jlcheck_NN.ipynb``: ``name`` with SMOKE and temporary output folders."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    params = {
        "SMOKE": True,
        "FIGURES_DIR": str(tmp / "figures"),
        "RUNS_DIR": str(tmp / "runs"),
        "PROCESSED_DIR": str(tmp / "processed"),
    }
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    src = "".join(cell["source"])
    for key, value in params.items():
        src = re.sub(
            rf"^{key} = .*$", f"{key} = {value!r}  # set by tools/check_jupyterlab.py", src, count=1, flags=re.M
        )
    check("SMOKE = True" in src, f"{name}: no `SMOKE = ...` line in its parameters cell")
    cell["source"] = src
    copy = ROOT / "notebooks" / f"_jlcheck_{name[:2]}.ipynb"
    copy.write_text(json.dumps(nb, indent=1))
    return copy


def remove_copy(copy: Path) -> None:
    copy.unlink(missing_ok=True)
    ckpt_dir = copy.parent / ".ipynb_checkpoints"
    (ckpt_dir / f"{copy.stem}-checkpoint.ipynb").unlink(missing_ok=True)
    if ckpt_dir.is_dir() and not any(ckpt_dir.iterdir()):
        ckpt_dir.rmdir()


# -- browser --------------------------------------------------------------------------------
def prompts(page: Page) -> list[str]:
    return page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()


def run_all(page: Page, lab: Lab, name: str, timeout: float) -> float:
    """Run All Cells from the Run menu; wait for the kernel to go idle; seconds it took."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    start, quiet = time.time(), 0
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".some(p => /\\[[*0-9]+\\]/.test(p.textContent))",
        timeout=30_000,
    )
    while quiet < 3:  # three calm polls in a row: no queued or running cell, and an idle kernel
        check(time.time() - start < timeout, f"{name}: still running after {timeout:.0f} s")
        time.sleep(2)
        busy = any("*" in p for p in prompts(page)) or not lab.kernels_idle()
        quiet = 0 if busy else quiet + 1
    return time.time() - start - 6


def check_outputs(page: Page, name: str) -> None:
    """Every code cell ran, no error output, no traceback on stderr, no broken widget."""
    ran = prompts(page)
    missing = [i for i, p in enumerate(ran) if not re.search(r"\[\d+\]", p)]
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    stderr = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]', has_text="Traceback")
    if errors.count() or stderr.count():
        bad = (errors if errors.count() else stderr).first
        bad.scroll_into_view_if_needed()
        raise CheckFailed(f"{name}: error output in the notebook:\n{bad.inner_text()[-2000:]}")
    check(not missing, f"{name}: code cells {missing} (of {len(ran)}) did not run")
    text = page.locator(".jp-Notebook").inner_text()
    for failure in WIDGET_FAILURES:
        check(failure not in text, f"{name}: {failure!r} in the notebook")


def check_panel(page: Page, out: Path) -> None:
    """Notebook 06: the panel renders; tick film_per_dim, click Run; one more row, a new plot."""
    panel = page.locator(".jp-OutputArea-output", has=page.locator("button.widget-button")).first
    check(panel.count(), "06: no output with a widget button (the ablation panel did not render)")
    check(panel.locator(".jupyter-widgets").count() > 20, "06: the panel has too few rendered widgets")
    labels = set(panel.locator(".widget-label, .widget-label-basic").all_inner_texts())
    wanted = {"model", "mode", "use_input_modulation", "film_per_dim", "kind", "n_neg", "seed", "label"}
    check(wanted <= {t.strip() for t in labels}, f"06: panel labels missing: {wanted - {t.strip() for t in labels}}")
    rows = panel.locator(".dataframe tbody tr")
    n_rows = rows.count()
    check(n_rows >= 1, "06: the panel's results table is empty after the default grid")
    plot = panel.locator("img")
    check(plot.count() == 1, f"06: expected one plot image in the panel, found {plot.count()}")
    before_src = plot.get_attribute("src")
    ink_before = plot.evaluate(INK)
    check(ink_before > 0.01, f"06: the panel's plot is blank after the default grid ({ink_before:.2%} ink)")
    panel.screenshot(path=out / "06_panel_before_click.png")

    checkbox = panel.locator(".widget-checkbox", has_text="film_per_dim").locator("input[type=checkbox]")
    check(checkbox.count() == 1, "06: no film_per_dim checkbox")
    checkbox.click()
    preview = panel.locator(".widget-html", has_text="next run:")
    try:  # the kernel recomputes the label: a round trip through the comm
        preview.filter(has_text="+film_per_dim").wait_for(timeout=20_000)
    except Exception:
        raise CheckFailed(f"06: preview did not follow the checkbox: {preview.inner_text()!r}") from None
    buttons = panel.locator("button.widget-button", has_text="Run")
    check(buttons.count() == 1, f"06: expected one Run button, found {buttons.count()}")
    check(buttons.is_enabled(), "06: the Run button is disabled")
    start = time.time()
    buttons.click()
    status = panel.locator(".widget-html", has_text="+film_per_dim")
    deadline = time.time() + 300
    while rows.count() <= n_rows:
        check(
            time.time() < deadline,
            f"06: table still has {rows.count()} rows 300 s after the click; "
            f"status: {panel.locator('.widget-html').all_inner_texts()}",
        )
        check("failed:" not in panel.inner_text(), f"06: the run failed: {panel.inner_text()[-1500:]}")
        time.sleep(2)
    page.wait_for_function(
        "([el, src]) => { const i = el.querySelector('img'); return i && i.src !== src; }",
        arg=[panel.element_handle(), before_src],
        timeout=60_000,
    )
    ink = plot.evaluate(INK)
    print(
        f"  click -> new row and new plot ({ink:.1%} ink) in {time.time() - start:.0f} s; status: "
        f"{[t for t in status.all_inner_texts() if 'test' in t]}"
    )
    check(rows.count() == n_rows + 1, f"06: table went from {n_rows} to {rows.count()} rows, expected +1")
    check(panel.locator(".dataframe", has_text="+film_per_dim").count(), "06: new row is not the clicked variant")
    check(buttons.is_enabled(), "06: the Run button stayed disabled after the run")
    panel.screenshot(path=out / "06_panel_after_click.png")
    check(
        ink > 0.5 * ink_before,
        f"06: the plot redrawn by the click is blank or cut: {ink:.2%} of its "
        f"pixels not white, {ink_before:.2%} before the click",
    )


def check_notebook(browser, lab: Lab, name: str, tmp: Path, out: Path, timeout: float) -> float:
    copy = smoke_copy(name, tmp)
    page = browser.new_page(viewport={"width": 1600, "height": 2000})
    console = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    try:
        page.goto(lab.url(f"lab/tree/notebooks/{copy.name}?reset"))  # reset: no stale tabs
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
        deadline = time.time() + 120
        while not lab.kernels_idle():  # the kernel started and is ready
            check(time.time() < deadline, f"{name}: no idle kernel 120 s after opening")
            time.sleep(1)
        seconds = run_all(page, lab, name, timeout)
        page.screenshot(path=out / f"{name[:2]}_after_run_all.png")
        check_outputs(page, name)
        n_widgets = page.locator(".jp-OutputArea-output .jupyter-widgets").count()
        print(f"  {name}: all cells ran in {seconds:.0f} s, no error output, {n_widgets} rendered widget elements")
        if name.startswith("06"):
            check_panel(page, out)
            check_outputs(page, name)
        widget_errors = [c for c in console if "widget" in c.lower()]
        check(not widget_errors, f"{name}: widget errors in the browser console: {widget_errors[:5]}")
        return seconds
    except Exception:
        page.screenshot(path=out / f"{name[:2]}_FAILED.png")
        raise
    finally:
        if console:
            print(f"  browser console errors ({len(console)}): {console[:5]}")
        page.close()
        lab.shutdown_sessions()
        remove_copy(copy)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", default="notebooks/06_ablation_explorer.ipynb")
    ap.add_argument("--all", action="store_true", help="every numbered notebook, in turn, in one server")
    ap.add_argument("--out", type=Path, default=Path("/tmp/jlcheck"), help="screenshot folder")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds allowed per notebook")
    ap.add_argument("--jupyter", type=Path, default=JUPYTER, help="jupyter executable (default: the kit's .venv)")
    args = ap.parse_args()
    for path, how in (
        (args.jupyter, "run `make setup` first, or pass --jupyter"),
        (Path(args.chromium), "apt-get install -y chromium, or pass --chromium"),
    ):
        if not path.is_file():
            print(f"check_jupyterlab: {path} not found: {how}", file=sys.stderr)
            return 2
    names = ALL if args.all else [Path(args.notebook).stem]
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="jlcheck-"))
    lab, times = None, {}
    try:
        lab = Lab(tmp, args.out / "jupyter.log", args.jupyter)
        print(f"JupyterLab on port {lab.port}; outputs of the runs in {tmp}; screenshots in {args.out}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            print(f"Chromium {browser.version}")
            for name in names:
                times[name] = check_notebook(browser, lab, name, tmp, args.out, args.timeout)
            browser.close()
    except CheckFailed as err:
        print(f"FAIL: {err}", file=sys.stderr)
        return 1
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS: " + ", ".join(f"{n} {s:.0f} s" for n, s in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
