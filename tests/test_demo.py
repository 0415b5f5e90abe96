"""``tiltstream demo``: its own broker and topics; the facility's transfer; what it shows at 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console
from source_fixtures import read_topic, simulate_small
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.cli.demo import StageBars
from tiltstream.connectors.source.transfer import file_sha256
from tiltstream.pipeline import PipelineLayout, pipeline_services
from tiltstream.pipeline_view import SeriesSummary, summary_table
from tiltstream.settings import CliSettings, LocalBrokerSettings, TopicSettings
from tiltstream.stages import REGISTRY
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import TOPIC_SPECS


def _summary(name: str, used: int, excluded: int, seconds: float | None) -> SeriesSummary:
    return SeriesSummary(
        tilt_series_id=f"cm40000-1:{name}",
        state="denoised" if seconds is not None else "failed",
        tilts_used=used,
        tilts_excluded=excluded,
        mean_motion_angstroms=12.345 if seconds is not None else None,
        defocus_range_micrometres=(1.234, 3.456) if seconds is not None else None,
        tomogram=f"cm40000-1/tomograms/{name}/v1/{name}.mrc",
        denoised=f"cm40000-1/tomograms/{name}/v1/{name}_denoised.mrc",
        seconds_last_tilt_to_tomogram=seconds,
    )


def _rendered(renderable: object, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text().splitlines()


def test_summary_is_one_line_per_series_at_80_columns() -> None:
    names = ["Position_1", "Position_12", "Position_3_retake"]
    summaries = [
        _summary(names[0], 9, 2, 166.4),
        _summary(names[1], 41, 0, 1234.0),
        _summary(names[2], 0, 0, None),
    ]
    lines = _rendered(summary_table(summaries))
    assert all(len(line) <= 80 for line in lines)
    assert not any("…" in line for line in lines)  # nothing cut to an ellipsis
    assert "cm40000-1" in lines[0]  # the session is in the title, once
    for summary, name in zip(summaries, names, strict=True):
        (line,) = [line for line in lines if f" {name} " in f" {line} "]  # exactly one line per series
        assert summary.state in line
        if summary.seconds_last_tilt_to_tomogram is not None:
            assert f"{summary.seconds_last_tilt_to_tomogram:.0f} s" in line
            assert "1.23-3.46" in line
            assert "12.3" in line
    assert sum("Position_" in line for line in lines) == len(names)  # nothing wrapped onto a second line


def test_a_bar_per_stage_fits_80_columns() -> None:
    bars = StageBars()
    counts = {"written by the microscope": (22, 22), "motion-corrected": (7, 22), "denoised": (0, 2)}
    bars.update(counts)
    bars.update({**counts, "motion-corrected": (9, 22)})  # a bar moves; no second one appears
    lines = [line for line in _rendered(bars.progress) if line.strip()]
    assert len(lines) == 3
    assert all(len(line) <= 80 for line in lines)
    assert "22/22" in lines[0]
    assert "9/22" in lines[1]
    assert "0/2" in lines[2]


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_demo_watcher_transfers_each_movie_checksummed_before_announcing_it(
    tmp_path: Path, acquisition_settings: CliSettings
) -> None:
    """The demo's watcher, as its layout starts it: detector disk -> storage (same bytes) -> event."""
    detector, raw = tmp_path / "detector", tmp_path / "raw"
    session = detector / "cm40000-1"
    simulate_small(session)
    originals = {p.name: file_sha256(p) for p in (session / "frames").iterdir()}
    layout = PipelineLayout(
        session_dir=session,
        raw_root=raw,
        processed_root=tmp_path / "processed",
        state_dir=tmp_path,
        bootstrap_servers=acquisition_settings.kafka.bootstrap_servers,
        database_url="sqlite://",
        session_id="cm40000-1",
        metrics_base_port=0,
        tilts_per_series=len(originals),  # one series: it ends as soon as its last movie is announced
        detector_root=detector,
    )
    (watch,) = [spec for spec in pipeline_services(layout) if spec.name == "watch"]
    env = {
        **os.environ,
        **watch.env,
        "TILTSTREAM_TOPICS_PREFIX": acquisition_settings.topics.prefix,
        "TILTSTREAM_TOPICS_PARTITIONS": str(acquisition_settings.topics.partitions),
        "TILTSTREAM_SOURCE_POLL_INTERVAL_SECONDS": "0.05",
        "TILTSTREAM_SOURCE_MDOC_SETTLE_SECONDS": "0.1",
    }
    argv = [*watch.argv, "--exit-when-done"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    copies = raw / "cm40000-1" / "frames"
    assert {p.name: file_sha256(p) for p in copies.iterdir()} == originals  # every byte in storage
    events = [e.value for e in read_topic(acquisition_settings, "MovieAcquired") if e.value]
    assert len(events) == len(originals)
    for event in events:  # each names the copy in storage (the raw root), not the detector's file
        assert event["movie"]["root"] == "raw"
        assert (raw / event["movie"]["path"]).is_file()


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_demo_runs_and_stops_its_broker(tmp_path: Path) -> None:
    broker_settings = LocalBrokerSettings(
        state_dir=tmp_path / "broker", port=0, controller_port=0, heap_megabytes=384
    )
    settings = CliSettings(broker=broker_settings, topics=TopicSettings(partitions=2))
    result = CliRunner().invoke(
        create_app(settings),
        ["demo", "--backbone-only", "--duration", "8", "--rate", "20", "--positions", "2", "--tilts", "3"],
    )
    assert result.exit_code == 0, result.output
    output = result.output
    assert "the pipeline's topics" in output
    # and the schemas topic and every registry group's dead-letter topic
    assert f"{len(TOPIC_SPECS) + 1 + len(REGISTRY.groups())} topic(s) created" in output
    for record in ("MovieAcquired", "MovieMotionCorrected", "CtfEstimated", "TomogramDenoised"):
        assert record in output
    seen = re.search(r"(\d+) events seen", output)
    assert seen is not None
    # 2 positions x 3 tilts: 6 acquired, 6 corrected, 6 CTF, 6 status; then per series 6 more events
    assert int(seen.group(1)) == 4 * 6 + 6 * 2
    assert "broker stopped" in output
    assert not LocalBroker(broker_settings).is_running()
