"""Running a processing service as a process: signals, the metrics and health endpoint, the loop."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from tiltstream.log import get_logger
from tiltstream.metrics import start_metrics_server
from tiltstream.processors.runtime.processor import Processor
from tiltstream.processors.runtime.service import ProcessorService
from tiltstream.processors.runtime.settings import ProcessorSettings

__all__ = ["run_service"]

log = get_logger(__name__)


def run_service(
    processor: Processor[Any], settings: ProcessorSettings, *, registry: CollectorRegistry | None = None
) -> None:
    """Serve ``processor`` until SIGTERM or SIGINT, then drain (see :class:`ProcessorService`).

    ``/metrics``, ``/healthz`` and ``/readyz`` are served on ``settings.metrics_port``. Call from the
    main thread (signal handlers are installed).
    """
    service = ProcessorService(processor, settings, registry=registry)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received, draining", signal=signal.Signals(signum).name)
        service.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    server = start_metrics_server(
        settings.metrics_port, registry=service.registry, healthy=service.healthy, ready=service.ready
    )
    log.info("metrics and probes listening", port=server.port)
    try:
        service.run()
    finally:
        server.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
