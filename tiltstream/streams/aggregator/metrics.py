"""The aggregator's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["AggregatorMetrics"]


class AggregatorMetrics:
    """Counters and timings of one aggregator worker, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "tiltstream_aggregator_events", "Input events handled, by record", ["record"], registry=registry
        )
        self.emitted = Counter(
            "tiltstream_aggregator_emitted", "Events emitted, by record", ["record"], registry=registry
        )
        self.dead_letters = Counter(
            "tiltstream_aggregator_dead_letters",
            "Input messages dead-lettered (undecodable or invalid)",
            registry=registry,
        )
        self.skipped_reinjections = Counter(
            "tiltstream_aggregator_skipped_reinjections",
            "Input messages skipped because they were reinjected for another group",
            registry=registry,
        )
        self.redelivered = Counter(
            "tiltstream_aggregator_redelivered",
            "Input records Faust delivered again after they were processed (skipped)",
            registry=registry,
        )
        self.backfilled = Counter(
            "tiltstream_aggregator_backfilled",
            "Input records Faust skipped, read and processed by the aggregator itself",
            registry=registry,
        )
        self.seconds = Histogram(
            "tiltstream_aggregator_event_seconds", "Time to handle one input event", registry=registry
        )
