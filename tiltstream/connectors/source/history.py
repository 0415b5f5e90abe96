"""What the watcher already said: its own output topics, read back on start and followed live.

Event ids are deterministic, so the set of ids on the topics is exactly the set of facts already
emitted. Reading them back (rather than keeping a local state file) makes the log the only state:
a watcher can restart on another machine, or after its disk was lost, and still emit nothing twice.
The read starts a margin before the session's oldest file, so its cost is bounded by the session.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.reader import StartAt, read_events

__all__ = ["EmittedHistory", "EndFollower", "read_history"]

HISTORY_RECORDS = ("MovieAcquired", "TiltSeriesAcquisitionEnded", "ProcessingFailed")


@dataclass
class EmittedHistory:
    """Ids of the session's events already on the topics, and the series whose end was announced."""

    event_ids: set[str] = field(default_factory=set)
    ended_series: set[str] = field(default_factory=set)
    events_read: int = 0


def read_history(
    kafka: KafkaSettings, catalogue: Catalogue, session_id: str, since: datetime | None
) -> EmittedHistory:
    """Read the session's events from the source's output topics, up to their current end."""
    history = EmittedHistory()
    topics = [catalogue.for_record(r) for r in HISTORY_RECORDS]
    for event in read_events(kafka, topics, start=StartAt.BEGINNING, since=since):
        history.events_read += 1
        value = event.value
        if value is None or value["metadata"]["session_id"] != session_id:
            continue
        history.event_ids.add(value["metadata"]["event_id"])
        if event.record == "TiltSeriesAcquisitionEnded":
            history.ended_series.add(value["metadata"]["tilt_series_id"])
    return history


class EndFollower:
    """Follows ``acquisition-ended`` live, so an operator's ``acquisition end`` stops the watcher's own."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue, session_id: str) -> None:
        self._kafka = kafka
        self._topic = catalogue.for_record("TiltSeriesAcquisitionEnded")
        self._session_id = session_id
        self._ended: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="end-follower", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start following from the topic's end; returns once the start offsets are fixed."""
        self._thread.start()
        if not self._ready.wait(timeout) and self._error is None:
            raise TimeoutError("the acquisition-ended follower did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            for event in read_events(
                self._kafka, [self._topic], start=StartAt.END, follow=True, ready=self._ready, stop=self._stop
            ):
                if event.value is not None and event.value["metadata"]["session_id"] == self._session_id:
                    with self._lock:
                        self._ended.add(event.value["metadata"]["tilt_series_id"])
        except BaseException as exc:  # surfaced by start() or ignored after shutdown
            self._error = exc
            self._ready.set()

    def ended(self) -> set[str]:
        """Series whose end has been announced since the follower started."""
        with self._lock:
            return set(self._ended)

    def close(self) -> None:
        """Stop following (returns within about a second)."""
        self._stop.set()
        self._thread.join(timeout=5)
