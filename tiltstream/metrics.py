"""The HTTP endpoint every service exposes: Prometheus ``/metrics`` and Kubernetes probes.

``/healthz`` answers 200 while the process is alive and its loop is making progress (liveness);
``/readyz`` answers 200 once the service can do its work, e.g. has joined its consumer group
(readiness). Both take callables so each service decides what healthy means.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

__all__ = ["DEFAULT_METRICS_PORT", "MetricsServer", "start_metrics_server"]

#: The port services listen on unless configured otherwise (``TILTSTREAM_<SERVICE>_METRICS_PORT``).
DEFAULT_METRICS_PORT = 9400

Check = Callable[[], bool]


class MetricsServer:
    """A running endpoint; :meth:`close` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The TCP port it listens on (useful when started on port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and wait for the serving thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(registry: CollectorRegistry, healthy: Check, ready: Check) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok = (healthy if path == "/healthz" else ready)()
                self._send(200 if ok else 503, b"ok\n" if ok else b"not ok\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would flood the log: stay quiet."""

    return Handler


def start_metrics_server(
    port: int = DEFAULT_METRICS_PORT,
    *,
    address: str = "0.0.0.0",
    registry: CollectorRegistry = REGISTRY,
    healthy: Check | None = None,
    ready: Check | None = None,
) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` from a daemon thread.

    Parameters
    ----------
    port
        TCP port; 0 picks a free one (read it back from :attr:`MetricsServer.port`).
    address
        Interface to bind; Kubernetes probes and scrapes the pod IP, so all interfaces by default.
    registry
        The collector registry to expose; tests pass their own.
    healthy, ready
        Liveness and readiness checks; always true when omitted.
    """
    server = ThreadingHTTPServer(
        (address, port), _handler(registry, healthy or (lambda: True), ready or (lambda: True))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
