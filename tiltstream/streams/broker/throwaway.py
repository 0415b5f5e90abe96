"""A broker for a benchmark or a script: an existing one if named, else a throw-away local one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tiltstream.settings import LocalBrokerSettings
from tiltstream.streams.broker.local import LocalBroker

__all__ = ["BOOTSTRAP_ENV", "throwaway_bootstrap"]

#: Names a running broker to use instead of starting one (the test suite reads it too).
BOOTSTRAP_ENV = "TILTSTREAM_TEST_BOOTSTRAP_SERVERS"


@contextlib.contextmanager
def throwaway_bootstrap() -> Iterator[str]:
    """Yield ``host:port`` of the broker in ``$TILTSTREAM_TEST_BOOTSTRAP_SERVERS``, or of a new local broker
    on free ports in a temporary directory, stopped and removed on exit."""
    existing = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if existing:
        yield existing
        return
    with tempfile.TemporaryDirectory() as state:
        broker = LocalBroker(LocalBrokerSettings(state_dir=Path(state), port=0, controller_port=0))
        broker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()
