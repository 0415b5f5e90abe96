"""Screenshot the web view's session page of a finished session, for the README.

Serves ``tiltstream web`` on the session's ISPyB database and data roots (without Kafka: ISPyB holds
every result once the session has ended), opens the session page in Debian's headless chromium through
Playwright, waits until every series' row and central slice have loaded, and writes a PNG::

    tiltstream demo --no-web                       # leaves tiltstream-demo/ behind
    .venv/bin/python scripts/screenshot_web.py --workdir tiltstream-demo -o docs/images/web-view.png
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright
from pydantic import SecretStr

from tiltstream.web import WebSettings, create_app

__all__ = ["main", "screenshot"]

WAIT_MS = 60_000
#: every image in the series table has loaded (a broken one never passes)
LOADED = "[...document.querySelectorAll('#series img')].every(i => i.complete && i.naturalWidth > 0)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serving(settings: WebSettings) -> Iterator[str]:
    """The web view under uvicorn in a thread; yields its base address."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-view", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web view did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(15)


def screenshot(workdir: Path, session_id: str, output: Path, width_pixels: int = 1100) -> int:
    """Write the session page of the demo session in ``workdir`` to ``output``; return the series shown."""
    database = workdir / "ispyb.sqlite"
    if not database.is_file():
        raise SystemExit(f"no ISPyB database at {database}: run `tiltstream demo --workdir {workdir}` first")
    browser_path = shutil.which("chromium")
    if browser_path is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    token = secrets.token_urlsafe(16)
    settings = WebSettings(
        database_url=SecretStr(f"sqlite:///{database}"),
        roots={"raw": workdir / "raw", "processed": workdir / "processed"},
        tokens={session_id: SecretStr(token)},
        follow_status=False,
        port=_free_port(),
    )
    with _serving(settings) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, headless=True)
        page = browser.new_page(viewport={"width": width_pixels, "height": 360})
        page.goto(f"{base}/sessions/{session_id}?token={token}")
        page.wait_for_selector("#series tbody tr[data-series]", timeout=WAIT_MS)
        page.wait_for_function(f"() => {LOADED}", timeout=WAIT_MS)
        shown = page.locator("#series tbody tr[data-series]").count()
        output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(output), full_page=True)
        browser.close()
    return shown


def main() -> None:
    """Command line: ``--workdir``, ``--session``, ``-o``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("tiltstream-demo"), help="a demo's work dir")
    parser.add_argument("--session", default="cm40000-1", help="the session id")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/web-view.png"))
    args = parser.parse_args()
    shown = screenshot(args.workdir.resolve(), args.session, args.output)
    print(f"{args.output}: the session page with {shown} tilt series")


if __name__ == "__main__":
    main()
