"""The topic catalogue: every topic of the pipeline, its record, key and retention, declared once.

All topics have the same partition count and are keyed by ``tilt_series_id``, so every event of one
tilt series lands on the same partition number in every topic (the aggregator's table is
co-partitioned with all its inputs and per-series order is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tiltstream.settings import TopicSettings

__all__ = [
    "DLQ_RETENTION_MS",
    "EVENT_RECORDS",
    "TOPIC_SPECS",
    "Catalogue",
    "CleanupPolicy",
    "Topic",
    "TopicSpec",
]

#: Dead letters wait this long for an operator (30 days).
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000


class CleanupPolicy(StrEnum):
    """Kafka's ``cleanup.policy``."""

    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the catalogue, independent of the cluster it is laid out on.

    ``retention_ms`` of -1 keeps events forever: the log is the system of record and replaying it
    from the start rebuilds every projection.
    """

    suffix: str
    record: str
    doc: str
    key: str = "tilt_series_id"
    cleanup_policy: CleanupPolicy = CleanupPolicy.DELETE
    retention_ms: int = -1


TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("movie.acquired", "MovieAcquired", "A movie is complete on disk (source connector)."),
    TopicSpec(
        "tiltseries.acquisition-ended",
        "TiltSeriesAcquisitionEnded",
        "No more tilts will come for a series (source connector, operator CLI).",
    ),
    TopicSpec("movie.motion-corrected", "MovieMotionCorrected", "A movie was motion-corrected."),
    TopicSpec("micrograph.ctf-estimated", "CtfEstimated", "A micrograph's CTF was estimated."),
    TopicSpec(
        "tiltseries.reconstruction-requested",
        "ReconstructionRequested",
        "Command to align and reconstruct a series (aggregator, operator CLI).",
    ),
    TopicSpec("tomogram.reconstructed", "TomogramReconstructed", "A tomogram was reconstructed."),
    TopicSpec("tomogram.denoised", "TomogramDenoised", "A tomogram was denoised."),
    TopicSpec("processing.failed", "ProcessingFailed", "A job failed terminally (every processor)."),
    TopicSpec(
        "tiltseries.status",
        "TiltSeriesStatus",
        "Latest state per tilt series (aggregator); compacted.",
        cleanup_policy=CleanupPolicy.COMPACT,
    ),
    TopicSpec(
        "session.parameters",
        "SessionParametersSet",
        "Operator-set processing parameters per session (tiltstream session set); compacted, keyed by "
        "session: the latest version is in force.",
        key="session_id",
        cleanup_policy=CleanupPolicy.COMPACT,
    ),
)

#: The record names of the catalogue's events, in pipeline order.
EVENT_RECORDS: tuple[str, ...] = tuple(spec.record for spec in TOPIC_SPECS)


@dataclass(frozen=True)
class Topic:
    """A topic as laid out on a cluster: its full name, partitions and configuration."""

    name: str
    record: str | None
    doc: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    key: str = "tilt_series_id"

    @property
    def is_dead_letter(self) -> bool:
        """True for a ``<prefix>.dlq.<group>`` topic, whose values are raw bytes."""
        return self.record is None


class Catalogue:
    """The catalogue laid out with a cluster's settings (prefix, partitions, replication)."""

    def __init__(self, settings: TopicSettings | None = None) -> None:
        self.settings = settings or TopicSettings()

    def _config(self, spec: TopicSpec) -> dict[str, str]:
        config = {
            "cleanup.policy": spec.cleanup_policy.value,
            "min.insync.replicas": str(self.settings.min_insync_replicas),
        }
        if spec.cleanup_policy is CleanupPolicy.DELETE:
            config["retention.ms"] = str(spec.retention_ms)
        else:
            config["min.cleanable.dirty.ratio"] = "0.1"
            config["segment.ms"] = str(6 * 3600 * 1000)
        return config

    def _topic(self, spec: TopicSpec) -> Topic:
        return Topic(
            name=f"{self.settings.prefix}.{spec.suffix}",
            record=spec.record,
            doc=spec.doc,
            partitions=self.settings.partitions,
            replication_factor=self.settings.replication_factor,
            config=self._config(spec),
            key=spec.key,
        )

    def topics(self) -> list[Topic]:
        """Every pipeline topic, in pipeline order (dead-letter topics are per group: :meth:`dlq`)."""
        return [self._topic(spec) for spec in TOPIC_SPECS]

    def all_topics(self) -> list[Topic]:
        """What ``topics apply`` lays out: the pipeline topics and the schemas topic."""
        return [*self.topics(), self.schemas_topic()]

    def topic(self, suffix_or_name: str) -> Topic:
        """A topic by full name (``tiltstream.movie.acquired``) or suffix (``movie.acquired``)."""
        for topic in self.topics():
            if suffix_or_name in (topic.name, topic.name.removeprefix(f"{self.settings.prefix}.")):
                return topic
        if suffix_or_name in (f"{self.settings.prefix}.schemas", "schemas"):
            return self.schemas_topic()
        if suffix_or_name.startswith(f"{self.settings.prefix}.dlq."):
            return self.dlq(suffix_or_name.removeprefix(f"{self.settings.prefix}.dlq."))
        raise KeyError(f"no topic {suffix_or_name!r} in the catalogue")

    def for_record(self, record: str) -> Topic:
        """The topic that carries ``record`` (short or full name)."""
        short = record.rpartition(".")[2]
        for topic in self.topics():
            if topic.record == short:
                return topic
        raise KeyError(f"no topic carries {record!r}")

    def schemas_topic(self) -> Topic:
        """``<prefix>.schemas``: every writer schema in use, by fingerprint; compacted, one partition."""
        return Topic(
            name=f"{self.settings.prefix}.schemas",
            record=None,
            doc="Writer schemas by CRC-64-AVRO fingerprint (hex), for readers older than their writers.",
            partitions=1,
            replication_factor=self.settings.replication_factor,
            config={
                "cleanup.policy": "compact",
                "min.insync.replicas": str(self.settings.min_insync_replicas),
            },
            key="fingerprint",
        )

    def dlq(self, group_id: str) -> Topic:
        """The dead-letter topic of a consumer group: the original bytes plus error headers."""
        if not group_id or any(c not in _TOPIC_CHARS for c in group_id):
            raise ValueError(f"group id {group_id!r} cannot name a topic (letters, digits, '._-')")
        return Topic(
            name=f"{self.settings.prefix}.dlq.{group_id}",
            record=None,
            doc=f"Messages consumer group {group_id} could not decode or process.",
            partitions=self.settings.partitions,
            replication_factor=self.settings.replication_factor,
            config={
                "cleanup.policy": "delete",
                "retention.ms": str(DLQ_RETENTION_MS),
                "min.insync.replicas": str(self.settings.min_insync_replicas),
            },
        )


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
