"""Fault injection for the aggregator's crash test: forces faust-streaming 0.15.3's rebalance race.

Python's ``site`` module imports this when its directory is on ``PYTHONPATH``; the crash test sets that
for the restarted aggregator only, with ``TILTSTREAM_TEST_FAUST_SEEK_RACE=1``. Then:

- ``Consumer.perform_seek`` first waits until the Fetcher has delivered some records of the stream
  partitions (``Recovery.on_recovery_completed`` resumes them, then seeks; on an idle machine records
  rarely arrive in between);
- decoding a record for delivery (a topic's ``decode``, awaited by the Conductor before it writes
  into the stream buffer) waits 20 ms, so the Fetcher's drain loop is inside a delivery when the seek ends
  (it then writes its stale read offset over the seek's, and drops the re-fetched records as read);
- every read from a stream buffer waits 40 ms, so the agent is behind when ``flow_control.resume()``
  clears its buffer.

Together they make Faust drop records in every run, where on an idle machine it happens now and then.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

_DECODE_DELAY = 0.02
_GET_DELAY = 0.04
_DELIVERIES_BEFORE_SEEK = 30
_WAIT_FOR_DELIVERIES = 10.0
_decoded = [0]


def _install() -> None:
    from faust.topics import Topic
    from faust.transport.consumer import Consumer
    from mode.utils.queues import FlowControlQueue

    perform_seek = Consumer.perform_seek
    get = FlowControlQueue.get
    compile_decode = Topic._compile_decode

    async def seek_while_delivering(self: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_FOR_DELIVERIES
        first = _decoded[0]  # recovery is over: from now on only stream records are delivered
        while _decoded[0] - first < _DELIVERIES_BEFORE_SEEK and loop.time() < deadline:
            await asyncio.sleep(0.005)
        await perform_seek(self)

    async def slow_get(self: Any) -> Any:
        await asyncio.sleep(_GET_DELAY)
        return await get(self)

    def compile_slow_decode(self: Any) -> None:
        compile_decode(self)
        decode = self.decode

        async def slow_decode(message: Any, *, propagate: bool = False) -> Any:
            await asyncio.sleep(_DECODE_DELAY)
            _decoded[0] += 1
            return await decode(message, propagate=propagate)

        self.decode = slow_decode

    Consumer.perform_seek = seek_while_delivering  # type: ignore[method-assign]
    FlowControlQueue.get = slow_get  # type: ignore[method-assign]
    Topic._compile_decode = compile_slow_decode  # type: ignore[method-assign]


if os.environ.get("TILTSTREAM_TEST_FAUST_SEEK_RACE") == "1":
    _install()
