"""A local single-node KRaft Kafka broker, run from Maven Central's jars (no tarball, no Docker)."""

from tiltstream.streams.broker.local import BrokerError, BrokerStatus, LocalBroker
from tiltstream.streams.broker.maven import KafkaFetchError, fetch_kafka, kafka_libs_dir

__all__ = [
    "BrokerError",
    "BrokerStatus",
    "KafkaFetchError",
    "LocalBroker",
    "fetch_kafka",
    "kafka_libs_dir",
]
