"""``tiltstream web``: the command starts the server on the configured port and database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from web_fixtures import SESSION, TOKEN, free_port

from tiltstream.connectors.ispyb.schema import create_tables
from tiltstream.connectors.ispyb.sink import create_engine


def test_web_command_serves_the_api(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ispyb.sqlite'}"
    engine = create_engine(url)
    create_tables(engine)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "TILTSTREAM_WEB_FOLLOW_STATUS": "false",  # ISPyB only: no broker needed
        "TILTSTREAM_WEB_TOKENS": f'{{"{SESSION}": "{TOKEN}"}}',
        "TILTSTREAM_WEB_ROOTS": f'{{"processed": "{tmp_path}"}}',
        "TILTSTREAM_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "tiltstream.cli", "web", "--port", str(port), "--url", url]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/sessions/{SESSION}", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "tiltstream web did not start listening"
                time.sleep(0.2)
        assert response.status_code == 401
        opened = httpx.get(
            f"http://127.0.0.1:{port}/api/sessions/{SESSION}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert opened.status_code == 200  # a session ISPyB has not heard of yet: no series, no live updates
        assert opened.json() == {"session": SESSION, "microscope": None, "series": [], "live": False}
    finally:
        server.terminate()
        server.wait(30)
