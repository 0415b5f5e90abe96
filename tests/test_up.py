"""``tiltstream up`` lays out the topics, starts every service as its own process and stops them all on
SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiltstream.settings import KafkaSettings, TopicSettings
from tiltstream.stages import REGISTRY, laid_out_topics
from tiltstream.streams.admin import describe_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def test_up_runs_every_service_and_drains_on_sigterm(kafka_bootstrap: str, tmp_path: Path) -> None:
    raw, processed, state = tmp_path / "raw", tmp_path / "processed", tmp_path / "state"
    (raw / "cm1-1").mkdir(parents=True)
    processed.mkdir()
    prefix = f"up{os.getpid()}"
    env = {
        **os.environ,
        "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TILTSTREAM_TOPICS_PREFIX": prefix,
        "TILTSTREAM_LOG_FORMAT": "json",
    }
    env["TILTSTREAM_ISPYB_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ispyb.sqlite'}"
    # no `topics apply` first: `up` lays the topics out itself, every group's dead-letter topic too
    subprocess.run(
        [sys.executable, "-m", "tiltstream.cli", "sink", "ispyb", "init-db"],
        env=env,
        check=True,
        capture_output=True,
    )
    command = [
        sys.executable, "-m", "tiltstream.cli", "up", str(raw / "cm1-1"),
        "--raw-root", str(raw), "--processed-root", str(processed), "--session-id", "cm1-1",
        "--state-dir", str(state), "--metrics-base-port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _check(process, state)
        wanted = laid_out_topics(Catalogue(TopicSettings(prefix=prefix)))
        admin = create_admin(KafkaSettings(bootstrap_servers=kafka_bootstrap))
        assert set(describe_topics(admin, [t.name for t in wanted])) == {t.name for t in wanted}
    finally:
        if process.poll() is None:  # a failed check: stop the services through `up` itself
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)


def _check(process: subprocess.Popen[bytes], state: Path) -> None:
    services = ["watch", *REGISTRY.names(), "aggregate", "ispyb-sink"]
    logs = {name: state / "logs" / f"{name}.log" for name in services}
    deadline = time.monotonic() + 90
    # Faust logs "Worker ready" only at its info level, which `tiltstream aggregate` leaves off by default
    ready = {"watch": "watcher started", "aggregate": "", "ispyb-sink": "ispyb sink started"}
    while time.monotonic() < deadline:
        texts = {n: (p.read_text(errors="replace") if p.exists() else "") for n, p in logs.items()}
        if all(ready.get(n, "processor started") in texts[n] for n in services):
            break
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        time.sleep(1)
    else:
        missing = [n for n in services if ready.get(n, "processor started") not in texts[n]]
        pytest.fail(f"services not all started: {missing}")
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=90)[0].decode(errors="replace")
    assert process.returncode == 0, output
    assert "stopping" in output
    for stage in REGISTRY.names():
        assert "processor stopped" in logs[stage].read_text()
    assert "Traceback" not in logs["aggregate"].read_text()
