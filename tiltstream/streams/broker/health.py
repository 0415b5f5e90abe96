"""Whether the local broker is healthy: it accepts connections and answers a metadata request.

:func:`wait_for_metadata` first waits for the listener's port to accept TCP connections (cheap), then
asks for metadata with an admin client that retries quickly (:func:`health_client`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka.admin import AdminClient

from tiltstream.streams.broker.process import port_open

__all__ = ["health_client", "wait_for_metadata"]


def health_client(bootstrap_servers: str) -> AdminClient:
    """Return an admin client that retries quickly and does not log closed connections, for health checks."""
    return AdminClient(
        {
            "bootstrap.servers": bootstrap_servers,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 250,
            "socket.connection.setup.timeout.ms": 2000,
            "log.connection.close": False,
        }
    )


def wait_for_metadata(
    bootstrap_servers: str,
    *,
    host: str,
    port: int,
    deadline: float,
    check: Callable[[], None],
    poll_seconds: float,
) -> bool:
    """Block until the broker answers ``AdminClient.list_topics``, or until ``deadline`` passes.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` of the broker's PLAINTEXT listener.
    host, port
        The listener's address, probed with a TCP connection first; no client is made before it opens.
    deadline
        The :func:`time.monotonic` time to give up at.
    check
        Called before every attempt; raises to stop waiting (when the broker process has exited).
    poll_seconds
        Seconds to sleep between port probes.

    Returns
    -------
    bool
        ``True`` once the broker answered, ``False`` when the deadline passed first.
    """
    admin: AdminClient | None = None
    while True:
        check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if admin is None and port_open(host, port):
            admin = health_client(bootstrap_servers)
        if admin is not None:
            try:
                admin.list_topics(timeout=min(2.0, remaining))
            except Exception:  # KafkaException while the broker is still coming up
                continue
            return True
        time.sleep(poll_seconds)
