"""Transfer with --delete-source: a watcher killed (SIGKILL) mid-copy and restarted loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from source_fixtures import movie_id_of, read_topic, simulate_small

from tiltstream.connectors.source.transfer import file_sha256
from tiltstream.settings import CliSettings


def _watch(session: Path, facility: Path, pipeline: CliSettings, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": pipeline.kafka.bootstrap_servers,
        "TILTSTREAM_TOPICS_PREFIX": pipeline.topics.prefix,
        "TILTSTREAM_TOPICS_PARTITIONS": str(pipeline.topics.partitions),
        "TILTSTREAM_SOURCE_POLL_INTERVAL_SECONDS": "0.05",
        "TILTSTREAM_SOURCE_MDOC_SETTLE_SECONDS": "0.1",
        "TILTSTREAM_LOG_FORMAT": "json",
    }
    command = [
        sys.executable,
        "-c",
        "from tiltstream.cli import main; main()",
        "watch",
        str(session),
        "--session-id",
        "cm40000-1",
    ]
    command += ["--transfer-to", str(facility), "--delete-source", "--series-settle-seconds", "1", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_mid_copy_and_restarted_loses_nothing(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    facility = tmp_path / "facility"
    (truth,) = simulate_small(session)
    frames = session / "frames"
    originals = {p.name: file_sha256(p) for p in frames.iterdir()}
    assert len(originals) == 7

    # a slow copy (40 kB/s), killed as soon as a partial copy shows up
    first = _watch(session, facility, acquisition_settings, "--transfer-bytes-per-second", "40000")
    deadline = time.monotonic() + 60
    partials: list[Path] = []
    while not partials and time.monotonic() < deadline and first.poll() is None:
        partials = list(facility.rglob(".*.partial")) if facility.exists() else []
        time.sleep(0.02)
    assert partials, first.communicate(timeout=5)[1].decode()[-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    remaining = {p.name for p in frames.iterdir()}
    assert remaining, "everything was copied before the kill: the test proves nothing"

    # restarted at full speed, it finishes the job
    second = _watch(session, facility, acquisition_settings, "--exit-when-done")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err.decode()[-3000:]

    copies = facility / "cm40000-1" / "frames"
    assert {p.name: file_sha256(p) for p in copies.iterdir()} == originals  # every byte arrived
    assert not list(facility.rglob(".*.partial"))
    assert not list(frames.iterdir())  # every source deleted, each only after its copy was announced
    assert (facility / "cm40000-1" / "Position_1.mdoc").exists()

    events = [e.value for e in read_topic(acquisition_settings, "MovieAcquired") if e.value]
    assert len(events) == 7  # each movie announced exactly once
    series = "cm40000-1:Position_1"
    assert {e["movie_id"] for e in events} == {movie_id_of(series, t.movie) for t in truth.tilts}
    for event in events:
        name = event["movie"]["path"].rpartition("/")[2]
        assert event["movie"] == {"root": "raw", "path": f"cm40000-1/frames/{name}"}
        assert name in originals
    (end,) = [e.value for e in read_topic(acquisition_settings, "TiltSeriesAcquisitionEnded")]
    assert end is not None
    assert end["acquired_tilt_count"] == 7
    assert not read_topic(acquisition_settings, "ProcessingFailed")
