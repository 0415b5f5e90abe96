"""`tiltstream process motioncorr` and `tiltstream process ctf` as real processes, on the broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from motioncorr_fixtures import synthetic_movie, write_movie
from processor_fixtures import collect, movie_event, send_movies

from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def test_motioncorr_then_ctf_services_from_the_cli(pipeline_settings: CliSettings, tmp_path: Path) -> None:
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(create_admin(pipeline_settings.kafka), catalogue.all_topics())
    roots = json.dumps({"raw": str(tmp_path / "raw"), "processed": str(tmp_path / "processed")})
    (tmp_path / "processed").mkdir()
    env = dict(os.environ)
    env.update(
        TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS=pipeline_settings.kafka.bootstrap_servers,
        TILTSTREAM_TOPICS_PREFIX=pipeline_settings.topics.prefix,
        TILTSTREAM_TOPICS_PARTITIONS=str(pipeline_settings.topics.partitions),
        TILTSTREAM_LOG_FORMAT="json",
        TILTSTREAM_MOTIONCORR_DATA_ROOTS=roots,
        TILTSTREAM_MOTIONCORR_PATCHES_X="1",
        TILTSTREAM_MOTIONCORR_PATCHES_Y="1",
        TILTSTREAM_CTF_DATA_ROOTS=roots,
        TILTSTREAM_CTF_BOX_SIZE_PIXELS="128",
    )
    tiltstream = [sys.executable, "-c", "from tiltstream.cli import main; main()"]
    ports = {"motioncorr": _free_port(), "ctf": _free_port()}
    log = (tmp_path / "services.log").open("ab")
    processes = {
        name: subprocess.Popen(
            [
                *tiltstream,
                "process",
                name,
                "--device",
                "cpu",
                "--group",
                f"{name}-{tmp_path.name}",
                "--metrics-port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for name, port in ports.items()
    }
    try:
        assert all(_ready(port) for port in ports.values()), (tmp_path / "services.log").read_text()[-3000:]
        movie, _ = synthetic_movie(5, size=128, frames=4, counts=2.0, contrast=0.2)
        value = movie_event(tmp_path, "A", 0, None)
        write_movie(tmp_path / "raw" / value["movie"]["path"], movie, 1.5)
        value.update(movie_format="tiff", frame_count=4, pixel_size_angstroms=1.5)
        send_movies(pipeline_settings, [value])
        events = collect(pipeline_settings, ["movie.motion-corrected", "micrograph.ctf-estimated"], 2, 120)
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['ctf']}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in processes.values()]
        log.close()
    assert codes == [0, 0]
    corrected = next(e.value for e in events if e.record == "MovieMotionCorrected" and e.value)
    estimated = next(e.value for e in events if e.record == "CtfEstimated" and e.value)
    assert corrected["metadata"]["causation_id"] == value["metadata"]["event_id"]
    assert corrected["voltage_kv"] == value["voltage_kv"]
    assert estimated["metadata"]["causation_id"] == corrected["metadata"]["event_id"]
    assert estimated["micrograph"] == corrected["micrograph"]
    assert 'tiltstream_processor_processed_total{stage="ctf"} 1.0' in metrics
