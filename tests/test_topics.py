"""``tiltstream topics apply|list`` against the real broker."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.settings import CliSettings
from tiltstream.stages import REGISTRY, laid_out_topics
from tiltstream.streams.admin import ApplyAction, apply_topics, describe_topics
from tiltstream.streams.catalogue import EVENT_RECORDS, TOPIC_SPECS, Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.streams.schema_registry import default_registry

pytestmark = pytest.mark.kafka


def test_apply_twice_via_cli_changes_nothing_the_second_time(pipeline_settings: CliSettings) -> None:
    app = create_app(pipeline_settings)
    runner = CliRunner()
    first = runner.invoke(app, ["topics", "apply"])
    assert first.exit_code == 0, first.output
    # with the schemas topic and every registry group's dead-letter topic
    assert f"{len(TOPIC_SPECS) + 1 + len(REGISTRY.groups())} were created" in first.output
    released = {e.fingerprint for e in default_registry().known() if e.short_name in EVENT_RECORDS}
    assert f"Published {len(released)} schema(s)" in first.output  # every version of every event
    second = runner.invoke(app, ["topics", "apply"])
    assert second.exit_code == 0, second.output
    assert "Nothing to change" in second.output

    catalogue = Catalogue(pipeline_settings.topics)
    found = describe_topics(
        create_admin(pipeline_settings.kafka), [t.name for t in laid_out_topics(catalogue)]
    )
    assert set(found) == {t.name for t in laid_out_topics(catalogue)}
    for group in REGISTRY.groups():  # every consumer group finds its dead-letter topic in place
        dlq = catalogue.dlq(group)
        assert found[dlq.name].partitions == pipeline_settings.topics.partitions
        assert found[dlq.name].config["retention.ms"] == dlq.config["retention.ms"]
    for topic in catalogue.topics():
        assert found[topic.name].partitions == pipeline_settings.topics.partitions
        assert found[topic.name].config["cleanup.policy"] == topic.config["cleanup.policy"]
    assert found[catalogue.schemas_topic().name].config["cleanup.policy"] == "compact"
    status = found[catalogue.topic("tiltseries.status").name]
    assert status.config["cleanup.policy"] == "compact"
    assert found[catalogue.topic("movie.acquired").name].config["retention.ms"] == "-1"


def test_list_shows_partition_counts(pipeline_settings: CliSettings) -> None:
    app = create_app(pipeline_settings)
    runner = CliRunner()
    before = runner.invoke(app, ["topics", "list", "--json"])
    rows = [json.loads(line) for line in before.stdout.splitlines()]
    assert len(rows) == len(TOPIC_SPECS) + 1 + len(REGISTRY.groups())  # what apply would lay out
    assert not any(row["exists"] for row in rows)
    runner.invoke(app, ["topics", "apply"])
    after = runner.invoke(app, ["topics", "list", "--json"])
    rows = [json.loads(line) for line in after.stdout.splitlines()]
    assert {row["partitions"] for row in rows if row["record"] != "(schema JSON)"} == {
        pipeline_settings.topics.partitions
    }
    assert all(row["exists"] for row in rows)
    assert {row["record"] for row in rows} == {spec.record for spec in TOPIC_SPECS} | {
        "(schema JSON)",
        "(raw bytes)",
    }


def test_apply_repairs_drift(pipeline_settings: CliSettings) -> None:
    admin = create_admin(pipeline_settings.kafka)
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(admin, catalogue.topics())
    acquired = catalogue.topic("movie.acquired").name
    # someone changed retention by hand: apply puts it back, a dry run only reports it
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    entry = ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, acquired, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    deadline = time.monotonic() + 30  # the broker applies the controller's record asynchronously
    while describe_topics(admin, [acquired])[acquired].config["retention.ms"] != "3600000":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    dry = {c.topic: c for c in apply_topics(admin, catalogue.topics(), dry_run=True)}
    assert dry[acquired].action is ApplyAction.UPDATED
    assert describe_topics(admin, [acquired])[acquired].config["retention.ms"] == "3600000"
    changes = {c.topic: c for c in apply_topics(admin, catalogue.topics())}
    assert changes[acquired].action is ApplyAction.UPDATED
    assert sum(c.action is ApplyAction.UNCHANGED for c in changes.values()) == len(TOPIC_SPECS) - 1
    assert describe_topics(admin, [acquired])[acquired].config["retention.ms"] == "-1"


def test_more_partitions_are_added_but_never_removed(
    pipeline_settings: CliSettings, kafka_admin: AdminClient
) -> None:
    admin = create_admin(pipeline_settings.kafka)
    catalogue = Catalogue(pipeline_settings.topics)
    apply_topics(admin, catalogue.topics())
    wider = Catalogue(
        pipeline_settings.topics.model_copy(update={"partitions": pipeline_settings.topics.partitions + 2})
    )
    changes = apply_topics(admin, wider.topics())
    assert all(c.action is ApplyAction.UPDATED for c in changes)
    found = describe_topics(admin, [t.name for t in wider.topics()])
    assert {d.partitions for d in found.values()} == {pipeline_settings.topics.partitions + 2}
    with pytest.raises(ValueError, match="cannot shrink"):
        apply_topics(admin, catalogue.topics())
