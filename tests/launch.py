"""The one way the tests and the benchmarks start the real app and a real browser: `streamlit run app.py` on a
free loopback port, and Debian's chromium driven by Playwright (never a browser Playwright downloads)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking switches Chromium keeps trying hosts this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env_extra: dict[str, str] | None = None, log: str = "",
              script: str = "app.py") -> tuple[subprocess.Popen, str]:
    """The app (or another Streamlit script) on a free loopback port, once it answers its health check; its output goes to test-artifacts/<log>
    when a log name is given. Returns the process and the app's URL."""
    port = free_port()
    env = os.environ | (env_extra or {})
    ARTIFACTS.mkdir(exist_ok=True)
    output = open(ARTIFACTS / log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the process writes it
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the app did not start within 60 s")


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


def launch_chromium(playwright):
    """Headless Debian chromium through a started `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
