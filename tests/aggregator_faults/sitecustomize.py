"""Fault injection for the aggregator's crash test: widens faust-streaming 0.15.3's rebalance race.

Python's ``site`` module imports this when its directory is on ``PYTHONPATH``; the crash test sets that
for the restarted aggregator only. ``TILTSTREAM_TEST_FAUST_SEEK_DELAY`` makes ``Consumer.perform_seek``
wait that many seconds first (longer than the Fetcher's one-second poll), so the Fetcher delivers
records of the just resumed stream partitions before the seek (``Recovery.on_recovery_completed``
resumes them, then seeks);
``TILTSTREAM_TEST_FAUST_QUEUE_DELAY`` makes every stream-buffer read wait, so the agent is still behind
when ``flow_control.resume()`` clears its buffer, and every write wait half of that, so the
Fetcher's drain loop is most likely inside a delivery when the seek ends (it then writes its stale
read offset over the seek's, and the re-fetched records are dropped). Together they make Faust drop
records in practically every run, where on an idle machine it happens now and then.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

_SEEK_DELAY = float(os.environ.get("TILTSTREAM_TEST_FAUST_SEEK_DELAY") or 0)
_QUEUE_DELAY = float(os.environ.get("TILTSTREAM_TEST_FAUST_QUEUE_DELAY") or 0)


def _install() -> None:
    from faust.transport.consumer import Consumer
    from mode.utils.queues import FlowControlQueue

    perform_seek = Consumer.perform_seek
    get = FlowControlQueue.get
    put = FlowControlQueue.put

    async def slow_seek(self: Any) -> None:
        await asyncio.sleep(_SEEK_DELAY)
        await perform_seek(self)

    async def slow_get(self: Any) -> Any:
        await asyncio.sleep(_QUEUE_DELAY)
        return await get(self)

    async def slow_put(self: Any, value: Any) -> None:
        await asyncio.sleep(_QUEUE_DELAY / 2)
        await put(self, value)

    Consumer.perform_seek = slow_seek  # type: ignore[method-assign]
    FlowControlQueue.get = slow_get  # type: ignore[method-assign]
    FlowControlQueue.put = slow_put  # type: ignore[method-assign]


if _SEEK_DELAY or _QUEUE_DELAY:
    _install()
