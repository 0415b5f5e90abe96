"""Prometheus metrics of the source connector."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["WatcherMetrics"]


class WatcherMetrics:
    """Files seen, bytes transferred, events emitted, errors, and the detection-to-ack latency.

    Parameters
    ----------
    registry
        Where the metrics are registered; a fresh registry when omitted (several watchers can share a
        process, e.g. in the benchmark).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.files_seen = Counter(
            "tiltstream_source_files_seen",
            "Files the watcher found, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.bytes_transferred = Counter(
            "tiltstream_source_bytes_transferred", "Bytes copied to facility storage.", registry=self.registry
        )
        self.events_emitted = Counter(
            "tiltstream_source_events_emitted",
            "Events acknowledged by the broker, by record.",
            ["record"],
            registry=self.registry,
        )
        self.errors = Counter(
            "tiltstream_source_errors",
            "Refused inputs and failed attempts, by error class.",
            ["error_class"],
            registry=self.registry,
        )
        self.emit_latency = Histogram(
            "tiltstream_source_emit_latency_seconds",
            "From the scan that found a movie complete to the broker's acknowledgement of its event.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.open_series = Gauge(
            "tiltstream_source_open_series",
            "Tilt series seen whose end is not announced yet.",
            registry=self.registry,
        )
