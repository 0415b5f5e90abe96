"""Following ``tiltseries.status`` (and the reconstruction commands and results) for the live pages.

One thread reads both topics from the beginning and keeps following them, outside any consumer group,
through the consumer runtime's decode path (:class:`~tiltstream.streams.runtime.decoding.MessageDecoder`):
reinjected copies are skipped (the follower read the originals), undecodable and invalid events are
logged and skipped (the follower owns no offsets and no dead-letter topic; it loses nothing).
It keeps the latest status of every series, the latest command (for the tilts' exclusion reasons) and
what the latest reconstruction measured that ISPyB has no column for (the half tomograms' FSC
resolution, the tilts the alignment left out and why, its confidence in each tilt), and hands every
new status to the subscribers of its session: asyncio queues filled through their loop's
``call_soon_threadsafe``, drained by the server-sent-event responses.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from tiltstream.log import get_logger
from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.reader import ReadEvent, StartAt, read_events
from tiltstream.streams.runtime.decoding import MessageDecoder
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["FOLLOWER_NAME", "StatusFollower", "Subscription"]

#: The follower's name for the reinjection rule: no dead letter is ever reinjected for it.
FOLLOWER_NAME = "tiltstream-web-follower"

_log = get_logger(__name__)

#: What the follower keeps of each tilt of a reconstruction.
_TILT_FIELDS = ("acquisition_order", "included", "exclusion_reason", "neighbour_correlation")


class Subscription:
    """Statuses of one session, queued for one event-stream response."""

    def __init__(self, session: str, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)

    def offer(self, status: dict[str, Any]) -> None:
        """Queue ``status`` from any thread (dropped when this slow reader is 10,000 behind)."""

        def put() -> None:
            if not self.queue.full():
                self.queue.put_nowait(status)

        self.loop.call_soon_threadsafe(put)


class StatusFollower:
    """The latest status and reconstruction command of every series, kept current from the topics.

    Parameters
    ----------
    kafka
        The cluster.
    catalogue
        Names the topics.
    retry_seconds
        Wait before reading again after an error (a topic not created yet, a broker away).
    """

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue, retry_seconds: float = 2.0) -> None:
        self.kafka = kafka
        self.catalogue = catalogue
        self.retry_seconds = retry_seconds
        self._statuses: dict[str, dict[str, Any]] = {}
        self._requests: dict[str, dict[str, Any]] = {}
        self._reconstructions: dict[str, dict[str, Any]] = {}
        self._subscribers: set[Subscription] = set()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start following in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="web-status-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following (returns within about a second)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        topics = [
            self.catalogue.topic("tiltseries.status"),
            self.catalogue.topic("tiltseries.reconstruction-requested"),
            self.catalogue.topic("tomogram.reconstructed"),
        ]
        dlq_topic = self.catalogue.dlq(FOLLOWER_NAME).name
        while not self._stop.is_set():
            try:
                decoder = MessageDecoder(schema_aware_serde(self.kafka, self.catalogue), dlq_topic=dlq_topic)
                for event in read_events(
                    self.kafka, topics, start=StartAt.BEGINNING, follow=True, decoder=decoder, stop=self._stop
                ):
                    self._apply(event, status_topic=topics[0].name, result_topic=topics[2].name)
            except Exception as error:
                _log.warning("status follower failed; reading again", error=str(error))
                self._stop.wait(self.retry_seconds)

    def _apply(self, event: ReadEvent, *, status_topic: str, result_topic: str) -> None:
        if event.error is not None:
            if event.raw is not None:  # not a tombstone
                _log.warning("status follower skips an event", error=event.error, topic=event.topic)
            return
        if event.key is None or event.value is None:
            return
        if event.topic == status_topic:
            self._status(event.key, event.value)
        elif event.topic == result_topic:
            self._reconstruction(event.key, event.value)
        else:
            self._request(event.key, event.value)

    def _status(self, key: str, value: dict[str, Any]) -> None:
        with self._changed:
            self._statuses[key] = value
            subscribers = [s for s in self._subscribers if key.startswith(f"{s.session}:")]
            self._changed.notify_all()
        for subscriber in subscribers:
            subscriber.offer(value)

    def _request(self, key: str, value: dict[str, Any]) -> None:
        with self._changed:
            current = self._requests.get(key)
            if current is None or int(value["version"]) >= int(current["version"]):
                self._requests[key] = value
            self._changed.notify_all()

    def _reconstruction(self, key: str, value: dict[str, Any]) -> None:
        """Keep the newest version's resolution estimate (not the whole event: its tilts stay in ISPyB)."""
        kept = {
            k: value.get(k)
            for k in ("version", "request_id", "fsc_resolution_angstroms", "half_tomograms_from")
        }
        kept["tilt_alignments"] = [
            {k: a.get(k) for k in _TILT_FIELDS} for a in value.get("tilt_alignments", [])
        ]
        with self._changed:
            current = self._reconstructions.get(key)
            if current is None or int(value["version"]) >= int(current["version"]):
                self._reconstructions[key] = kept
            self._changed.notify_all()

    # -- what the pages read ------------------------------------------------------------------------

    def statuses(self, session: str) -> dict[str, dict[str, Any]]:
        """The latest status of each series of ``session``, by tilt series id."""
        with self._changed:
            return {k: v for k, v in self._statuses.items() if k.startswith(f"{session}:")}

    def status(self, tilt_series_id: str) -> dict[str, Any] | None:
        """The latest status of one series."""
        with self._changed:
            return self._statuses.get(tilt_series_id)

    def request(self, tilt_series_id: str) -> dict[str, Any] | None:
        """The latest reconstruction command of one series (its tilts, included or not, and why)."""
        with self._changed:
            return self._requests.get(tilt_series_id)

    def reconstruction(self, tilt_series_id: str) -> dict[str, Any] | None:
        """The newest reconstruction of one series: its ``version``, ``request_id``,
        ``fsc_resolution_angstroms``, ``half_tomograms_from`` and per tilt ``tilt_alignments``
        (``acquisition_order``, ``included``, ``exclusion_reason``, ``neighbour_correlation``)."""
        with self._changed:
            return self._reconstructions.get(tilt_series_id)

    def wait_for(self, condition: Callable[[StatusFollower], bool], timeout: float) -> bool:
        """Block until ``condition(self)`` holds (re-checked on every event) or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def subscribe(self, session: str, loop: asyncio.AbstractEventLoop) -> Subscription:
        """Receive the session's statuses from now on."""
        subscription = Subscription(session, loop)
        with self._changed:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving."""
        with self._changed:
            self._subscribers.discard(subscription)
