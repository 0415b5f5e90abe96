"""The Strimzi topics in k8s/ are the topic catalogue in code, and the services are told the same layout."""

from __future__ import annotations

from pathlib import Path

from k8s_helpers import K8S, by_kind, rendered
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.k8s.topics import kafka_topic_manifests, kafka_topics_yaml
from tiltstream.settings import CliSettings, TopicSettings
from tiltstream.stages import REGISTRY, laid_out_topics
from tiltstream.streams.catalogue import Catalogue

TOPICS_FILE = K8S / "base" / "kafka" / "topics.yaml"
#: The layout the base deploys: 12 partitions (>= the largest stage's 8 replicas), RF 3, min ISR 2.
BASE_TOPICS = TopicSettings(prefix="tiltstream", partitions=12, replication_factor=3, min_insync_replicas=2)


def test_committed_topics_equal_the_generator_output() -> None:
    expected = kafka_topics_yaml(Catalogue(BASE_TOPICS), cluster="tiltstream")
    assert TOPICS_FILE.read_text() == expected, (
        "k8s/base/kafka/topics.yaml is stale: regenerate it with the command in its first lines"
    )


def test_cli_writes_the_committed_file(tmp_path: Path) -> None:
    output = tmp_path / "topics.yaml"
    result = CliRunner().invoke(
        create_app(CliSettings()),
        ["k8s", "topics", "--partitions", "12", "--replication-factor", "3", "--min-insync-replicas", "2",
         "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert output.read_text() == TOPICS_FILE.read_text()


def test_every_catalogue_topic_and_dead_letter_topic_has_a_kafka_topic() -> None:
    catalogue = Catalogue(BASE_TOPICS)
    topics = by_kind(rendered("base"), "KafkaTopic")
    declared = {t["spec"]["topicName"]: t for t in topics.values()}
    wanted = laid_out_topics(catalogue)
    assert set(declared) == {t.name for t in wanted}
    # every consumer group of the registry, stages and services, has its dead-letter topic declared
    assert {f"tiltstream.dlq.{group}" for group in REGISTRY.groups()} <= set(declared)
    assert "tiltstream.dlq.tiltstream-ispyb-sink" in declared
    for topic in wanted:
        spec = declared[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions
        assert spec["replicas"] == topic.replication_factor
        assert spec["config"] == topic.config
    assert declared["tiltstream.schemas"]["spec"]["partitions"] == 1


def test_generator_follows_the_settings() -> None:
    settings = TopicSettings(prefix="facility", partitions=7, replication_factor=2, min_insync_replicas=1)
    manifests = kafka_topic_manifests(Catalogue(settings), cluster="other", dlq_groups=["g1"])
    assert {m["metadata"]["labels"]["strimzi.io/cluster"] for m in manifests} == {"other"}
    names = [m["spec"]["topicName"] for m in manifests]
    assert "facility.dlq.g1" in names
    assert all(n.startswith("facility.") for n in names)
    co = [
        m["spec"]["partitions"]
        for m in manifests
        if m["metadata"]["labels"]["tiltstream.io/co-partitioned"] == "true"
    ]
    assert set(co) == {7}
    assert len(co) == len(manifests) - 1
    header = kafka_topics_yaml(Catalogue(settings), cluster="other", dlq_groups=["g1"]).splitlines()[1]
    assert "--partitions 7" in header
    assert "--dlq-group g1" in header


def test_services_are_told_the_layout_the_topics_have() -> None:
    for overlay in ("base", "overlays/burst", "overlays/facility-20"):
        manifests = rendered(overlay)
        config = by_kind(manifests, "ConfigMap")["tiltstream-kafka"]["data"]
        topics = [
            t
            for t in by_kind(manifests, "KafkaTopic").values()
            if t["metadata"]["labels"]["tiltstream.io/co-partitioned"] == "true"
        ]
        assert {t["spec"]["partitions"] for t in topics} == {int(config["TILTSTREAM_TOPICS_PARTITIONS"])}, (
            overlay
        )
        assert {t["spec"]["replicas"] for t in topics} == {
            int(config["TILTSTREAM_TOPICS_REPLICATION_FACTOR"])
        }
        assert {t["spec"]["config"]["min.insync.replicas"] for t in topics} == {
            config["TILTSTREAM_TOPICS_MIN_INSYNC_REPLICAS"]
        }
        assert all(
            t["spec"]["topicName"].startswith(config["TILTSTREAM_TOPICS_PREFIX"] + ".") for t in topics
        )
