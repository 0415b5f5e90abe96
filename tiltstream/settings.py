"""Settings shared by every tiltstream service, read from ``TILTSTREAM_`` environment variables.

Each service composes the pieces it needs into one frozen settings object of its own
(see :class:`CliSettings`); credentials are :class:`pydantic.SecretStr` so they never reach a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "CliSettings",
    "KafkaSettings",
    "LocalBrokerSettings",
    "LoggingSettings",
    "TopicSettings",
    "default_cache_dir",
    "default_state_dir",
]


def default_cache_dir() -> Path:
    """Where downloaded artefacts (Kafka's jars) are kept: ``$XDG_CACHE_HOME/tiltstream``."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tiltstream"


def default_state_dir() -> Path:
    """Where the local broker keeps its log directory and pid file: ``$XDG_STATE_HOME/tiltstream``."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tiltstream"


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster (``TILTSTREAM_KAFKA_*``).

    PLAINTEXT on loopback by default; a secured production cluster needs only configuration:
    ``security_protocol=SASL_SSL`` with a SASL mechanism and credentials, and/or the TLS files.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_KAFKA_", frozen=True, extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "tiltstream"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_endpoint_identification: bool = True
    request_timeout_seconds: float = Field(default=30.0, gt=0)


class TopicSettings(BaseSettings):
    """How the topic catalogue is laid out on the cluster (``TILTSTREAM_TOPICS_*``).

    Every topic gets the same partition count so that all events of one tilt series land on the
    same partition number everywhere (co-partitioning for the aggregator).
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_TOPICS_", frozen=True, extra="ignore")

    prefix: str = "tiltstream"
    partitions: int = Field(default=6, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)


class LocalBrokerSettings(BaseSettings):
    """The single-node KRaft broker run from Maven Central's jars (``TILTSTREAM_BROKER_*``)."""

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_BROKER_", frozen=True, extra="ignore")

    kafka_version: str = "4.1.1"
    scala_version: str = "2.13"
    cache_dir: Path = Field(default_factory=default_cache_dir)
    state_dir: Path = Field(default_factory=lambda: default_state_dir() / "broker")
    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=0, le=65535)
    controller_port: int = Field(default=9093, ge=0, le=65535)
    heap_megabytes: int = Field(default=768, ge=256)
    java: str = "java"
    mvn: str = "mvn"
    start_timeout_seconds: float = Field(default=90.0, gt=0)
    stop_timeout_seconds: float = Field(default=30.0, gt=0)


class LoggingSettings(BaseSettings):
    """Log output (``TILTSTREAM_LOG_*``): JSON lines for services, coloured console for people.

    ``auto`` picks the console renderer when standard error is a terminal and JSON otherwise.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_LOG_", frozen=True, extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class CliSettings(BaseSettings):
    """Everything the operator and analyst CLI needs."""

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_", frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    broker: LocalBrokerSettings = Field(default_factory=LocalBrokerSettings)
    log: LoggingSettings = Field(default_factory=LoggingSettings)
