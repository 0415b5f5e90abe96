"""Kafka client factories that carry the delivery rules of DESIGN.md.

* Producers are idempotent with ``acks=all``: a retried send never duplicates or reorders.
* Consumers use cooperative-sticky assignment, never auto-commit what they have not processed:
  ``enable.auto.offset.store=false`` and the service calls ``store_offsets`` only after its output
  is acknowledged (the background auto-commit then commits only stored offsets).
* Security (SASL, TLS) comes from :class:`~tiltstream.settings.KafkaSettings` alone.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from tiltstream.settings import KafkaSettings

__all__ = [
    "admin_config",
    "common_config",
    "consumer_config",
    "create_admin",
    "create_consumer",
    "create_producer",
    "producer_config",
]


def common_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka properties shared by every client: bootstrap, client id and security."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol.lower(),
        # librdkafka's own log lines go through Python logging (configured once by the entry point)
        "logger": logging.getLogger("tiltstream.librdkafka"),
        "log.connection.close": False,
    }
    if settings.security_protocol.startswith("SASL"):
        if settings.sasl_mechanism is None:
            raise ValueError(f"security_protocol {settings.security_protocol} needs sasl_mechanism")
        config["sasl.mechanism"] = settings.sasl_mechanism
        if settings.sasl_mechanism != "OAUTHBEARER":
            if settings.sasl_username is None or settings.sasl_password is None:
                raise ValueError(f"SASL {settings.sasl_mechanism} needs sasl_username and sasl_password")
            config["sasl.username"] = settings.sasl_username
            config["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.security_protocol.endswith("SSL"):
        if settings.ssl_ca_location:
            config["ssl.ca.location"] = str(settings.ssl_ca_location)
        if settings.ssl_certificate_location:
            config["ssl.certificate.location"] = str(settings.ssl_certificate_location)
        if settings.ssl_key_location:
            config["ssl.key.location"] = str(settings.ssl_key_location)
        if settings.ssl_key_password:
            config["ssl.key.password"] = settings.ssl_key_password.get_secret_value()
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.ssl_endpoint_identification else "none"
        )
    return config


def producer_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, ``acks=all`` producer that keys by tilt series (murmur2, like the Java client)."""
    config = common_config(settings)
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "compression.type": "zstd",
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            "message.timeout.ms": int(settings.request_timeout_seconds * 1000 * 4),
        }
    )
    config.update(overrides)
    return config


def consumer_config(settings: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A group member that commits only the offsets the service has stored after processing."""
    config = common_config(settings)
    config.update(
        {
            "group.id": group_id,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 45000,
            "max.poll.interval.ms": 300000,
        }
    )
    config.update(overrides)
    return config


def admin_config(settings: KafkaSettings) -> dict[str, Any]:
    """An admin client for topics and consumer-group offsets."""
    return common_config(settings)


def create_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """A :class:`confluent_kafka.Producer` with :func:`producer_config`."""
    return Producer(producer_config(settings, **overrides))


def create_consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    """A :class:`confluent_kafka.Consumer` with :func:`consumer_config`."""
    return Consumer(consumer_config(settings, group_id, **overrides))


def create_admin(settings: KafkaSettings) -> AdminClient:
    """A :class:`confluent_kafka.admin.AdminClient` with :func:`admin_config`."""
    return AdminClient(admin_config(settings))
