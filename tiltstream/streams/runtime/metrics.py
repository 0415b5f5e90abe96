"""The consumer runtime's metrics: dead letters, skipped reinjections, dead-letter retries.

Each service names them in its own namespace (``tiltstream_processor_dead_lettered{stage}``,
``ispyb_sink_dead_lettered``), so its dashboards read one family per service.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter

__all__ = ["ConsumerMetrics"]


class ConsumerMetrics:
    """Counters of one consumer, on ``registry``, named ``<namespace>_<what>``.

    Parameters
    ----------
    registry
        Where the counters are registered (a fresh registry when omitted).
    namespace
        Metric name prefix, e.g. ``tiltstream_processor``.
    labels
        Constant labels of this consumer, e.g. ``{"stage": "motioncorr"}``.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "tiltstream_consumer",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        registry = registry or CollectorRegistry()
        labels = dict(labels or {})
        names = list(labels)

        def counter(name: str, doc: str) -> Counter:
            made = Counter(f"{namespace}_{name}", doc, names, registry=registry)
            return made.labels(**labels) if labels else made

        self.dead_letters = counter(
            "dead_lettered", "Messages sent to the dead-letter topic (undecodable, invalid or refused)."
        )
        self.skipped = counter(
            "reinjected_skipped", "Messages reinjected for another consumer group, skipped."
        )
        self.dead_letter_retries = counter(
            "dead_letter_retries", "Dead-letter sends that failed and wait to be tried again."
        )

    def dead_lettered(self) -> None:
        """Count one message in the dead-letter topic."""
        self.dead_letters.inc()

    def skipped_reinjected(self) -> None:
        """Count one message skipped under the reinjection rule."""
        self.skipped.inc()

    def dead_letter_failed(self) -> None:
        """Count one failed dead-letter send (it is tried again)."""
        self.dead_letter_retries.inc()
