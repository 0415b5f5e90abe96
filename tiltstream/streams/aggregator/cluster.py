"""What the aggregator needs from the cluster before Faust starts: URLs, credentials, its topics."""

from __future__ import annotations

import ssl
from typing import Any

from tiltstream.settings import KafkaSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.aggregator.settings import AggregatorSettings
from tiltstream.streams.catalogue import Catalogue, Topic
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.schema_registry import default_registry
from tiltstream.streams.schema_topic import publish_schemas

__all__ = [
    "OUTPUT_RECORDS",
    "broker_credentials",
    "broker_urls",
    "prepare_cluster",
    "ticks_topic",
]

#: The records the aggregator writes.
OUTPUT_RECORDS = ("ReconstructionRequested", "TiltSeriesStatus", "ProcessingFailed")


def broker_urls(settings: KafkaSettings) -> list[str]:
    """Faust's broker URLs for a bootstrap list ``host:port,host:port``."""
    return [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",") if server.strip()]


def broker_credentials(settings: KafkaSettings) -> Any:
    """Faust credentials for the security settings, or None for PLAINTEXT."""
    import faust

    context = None
    if settings.security_protocol.endswith("SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.ssl_ca_location) if settings.ssl_ca_location else None
        )
        if settings.ssl_certificate_location:
            context.load_cert_chain(
                str(settings.ssl_certificate_location),
                str(settings.ssl_key_location) if settings.ssl_key_location else None,
                settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None,
            )
        context.check_hostname = settings.ssl_endpoint_identification
    if settings.security_protocol.startswith("SASL"):
        if settings.sasl_mechanism in (None, "OAUTHBEARER"):
            raise ValueError(f"the aggregator supports SASL PLAIN and SCRAM, not {settings.sasl_mechanism}")
        if settings.sasl_username is None or settings.sasl_password is None:
            raise ValueError(f"SASL {settings.sasl_mechanism} needs sasl_username and sasl_password")
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


def ticks_topic(settings: AggregatorSettings) -> Topic:
    """``<prefix>.<app_id>.ticks``: grace-timer wake-ups, co-partitioned with the inputs, kept a day."""
    return Topic(
        name=f"{settings.topics.prefix}.{settings.app_id}.ticks",
        record=None,
        doc="Aggregator grace-timer wake-ups (key: tilt series, empty value).",
        partitions=settings.topics.partitions,
        replication_factor=settings.topics.replication_factor,
        config={"cleanup.policy": "delete", "retention.ms": str(24 * 3600 * 1000)},
    )


def prepare_cluster(settings: AggregatorSettings) -> None:
    """Create the aggregator's own topics (ticks, dead letters) and publish its output schemas.

    The catalogue's topics must exist already (``tiltstream topics apply``); the table's changelog
    topic is created by Faust.
    """
    catalogue = Catalogue(settings.topics)
    admin = create_admin(settings.kafka)
    apply_topics(admin, [ticks_topic(settings), catalogue.dlq(settings.app_id)])
    registry = default_registry()
    producer = create_producer(settings.kafka)
    publish_schemas(producer, catalogue.schemas_topic(), [registry.current(r) for r in OUTPUT_RECORDS])
