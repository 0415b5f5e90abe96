"""``tiltstream demo`` brings up its own broker, lays out the topics, shows events and stops cleanly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings, LocalBrokerSettings, TopicSettings
from tiltstream.stages import REGISTRY
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import TOPIC_SPECS

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(180)
def test_demo_runs_and_stops_its_broker(tmp_path: Path) -> None:
    broker_settings = LocalBrokerSettings(
        state_dir=tmp_path / "broker", port=0, controller_port=0, heap_megabytes=384
    )
    settings = CliSettings(broker=broker_settings, topics=TopicSettings(partitions=2))
    result = CliRunner().invoke(
        create_app(settings),
        ["demo", "--backbone-only", "--duration", "12", "--rate", "20", "--positions", "2", "--tilts", "3"],
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
