"""Prometheus metrics endpoint for a service."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

__all__ = ["MetricsServer", "start_metrics_server"]


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The TCP port it listens on (useful when started on port 0)."""
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop serving and wait for the serving thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    port: int, *, address: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> MetricsServer:
    """Serve ``registry`` on ``http://address:port/metrics`` from a daemon thread.

    Parameters
    ----------
    port
        TCP port; 0 picks a free one (read it back from :attr:`MetricsServer.port`).
    address
        Interface to bind; Kubernetes scrapes the pod IP, so all interfaces by default.
    registry
        The collector registry to expose; tests pass their own.
    """
    server, thread = start_http_server(port, addr=address, registry=registry)
    return MetricsServer(server, thread)
