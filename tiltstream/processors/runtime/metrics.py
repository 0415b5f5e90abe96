"""Prometheus metrics of a processing service's jobs.

The consumer runtime's own counters (``tiltstream_processor_dead_lettered``, ``_reinjected_skipped``,
``_dead_letter_retries``) sit beside them: :class:`~tiltstream.streams.runtime.metrics.ConsumerMetrics`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ProcessorMetrics"]

_BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class ProcessorMetrics:
    """Counters and histograms, labelled by stage, on ``registry``."""

    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        self.stage = stage
        self._processed = Counter(
            "tiltstream_processor_processed", "Inputs processed successfully.", ["stage"], registry=registry
        )
        self._failed = Counter(
            "tiltstream_processor_failed",
            "Inputs that ended in ProcessingFailed, by failure kind and error class.",
            ["stage", "failure_kind", "error_class"],
            registry=registry,
        )
        self._retries = Counter(
            "tiltstream_processor_retries",
            "Attempts retried after a transient error.",
            ["stage"],
            registry=registry,
        )
        self._duration = Histogram(
            "tiltstream_processor_job_duration_seconds",
            "Wall-clock seconds per input, all attempts.",
            ["stage"],
            buckets=_BUCKETS_SECONDS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "tiltstream_processor_in_flight", "Jobs running now.", ["stage"], registry=registry
        )

    def processed(self, seconds: float) -> None:
        """Count a success that took ``seconds``."""
        self._processed.labels(self.stage).inc()
        self._duration.labels(self.stage).observe(seconds)

    def failed(self, failure_kind: str, error_class: str, seconds: float) -> None:
        """Count a terminal failure."""
        self._failed.labels(self.stage, failure_kind, error_class).inc()
        self._duration.labels(self.stage).observe(seconds)

    def retried(self) -> None:
        """Count one retry."""
        self._retries.labels(self.stage).inc()

    def in_flight(self, running: int) -> None:
        """Set the number of running jobs."""
        self._in_flight.labels(self.stage).set(running)
