"""Session parameters as events: ``SessionParametersSet`` on a compacted topic keyed by session.

``tiltstream session set`` publishes version n+1 (the whole set in force, not a difference); the source
reads the latest version on start and follows the topic, and records the version it used in its events,
so a replay of the log reproduces the same results.
"""

from __future__ import annotations

import getpass
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tiltstream.connectors.source.events import SERVICE, carried_parameters
from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_producer
from tiltstream.streams.metadata import make_metadata
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import StartAt, read_events

__all__ = [
    "ParametersFollower",
    "latest_parameters",
    "parameters_event",
    "publish_parameters",
    "with_latest_parameters",
]

RECORD = "SessionParametersSet"
_FIELDS = tuple(k for k in SessionParameters.model_fields if k != "version")


def parameters_event(
    session_id: str, params: SessionParameters, *, microscope: str, set_by: str | None
) -> dict[str, Any]:
    """The ``SessionParametersSet`` value of ``params`` (its ``version`` must be ≥ 1)."""
    now = datetime.now(UTC)
    return {
        "metadata": make_metadata(
            RECORD,
            service=SERVICE,
            microscope=microscope,
            session_id=session_id,
            tilt_series_id=session_id,  # the topic's key: one compacted entry per session
            key=("parameters", params.version),
            occurred_at=now,
        ),
        "version": params.version,
        "set_by": set_by,
        **{k: getattr(params, k) for k in _FIELDS},
    }


def _from_event(value: dict[str, Any]) -> SessionParameters:
    return SessionParameters(version=value["version"], **{k: value.get(k) for k in _FIELDS})


def latest_parameters(kafka: KafkaSettings, catalogue: Catalogue, session_id: str) -> SessionParameters:
    """The session's parameters in force now (version 0, nothing set, when none were ever set)."""
    latest = SessionParameters()
    for event in read_events(kafka, [catalogue.for_record(RECORD)], key=session_id):
        value = event.value
        ours = value is not None and value["metadata"]["session_id"] == session_id
        if ours and value is not None and value["version"] > latest.version:
            latest = _from_event(value)
    return latest


def with_latest_parameters(
    kafka: KafkaSettings, catalogue: Catalogue
) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """For ``reprocess``: a ``MovieAcquired`` value with its session's newest carried parameters.

    Changing a parameter mid-session applies to new movies; reprocessing an older movie sends it again
    with the values (and version) in force now, so that the redone work follows them. Values the
    source resolves from files or the mdoc (gain and defect paths, dose) stay as the movie had them.
    Other records pass unchanged.
    """
    latest: dict[str, SessionParameters] = {}

    def overlay(record: str, value: dict[str, Any]) -> dict[str, Any]:
        if record != "MovieAcquired":
            return value
        session_id = str(value["metadata"]["session_id"])
        if session_id not in latest:
            latest[session_id] = latest_parameters(kafka, catalogue, session_id)
        parameters = latest[session_id]
        if parameters.version <= int(value.get("session_parameters_version") or 0):
            return value
        return value | carried_parameters(parameters) | {"session_parameters_version": parameters.version}

    return overlay


def publish_parameters(
    kafka: KafkaSettings,
    catalogue: Catalogue,
    session_id: str,
    params: SessionParameters,
    *,
    microscope: str,
    producer: EventProducer | None = None,
) -> dict[str, Any]:
    """Publish ``params`` as the session's next version (one more than the latest on the topic)."""
    current = latest_parameters(kafka, catalogue, session_id)
    versioned = params.model_copy(update={"version": current.version + 1})
    value = parameters_event(session_id, versioned, microscope=microscope, set_by=getpass.getuser())
    producer = producer or EventProducer(create_producer(kafka), catalogue)
    producer.wait([producer.send(RECORD, value)])
    return value


class ParametersFollower:
    """Follows the parameters topic live: the newest version of one session's parameters."""

    def __init__(self, kafka: KafkaSettings, catalogue: Catalogue, session_id: str) -> None:
        self._kafka = kafka
        self._topic = catalogue.for_record(RECORD)
        self._session_id = session_id
        self._latest: SessionParameters | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parameters-follower", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start following from the topic's end; returns once the start offsets are fixed."""
        self._thread.start()
        if not self._ready.wait(timeout) and self._error is None:
            raise TimeoutError("the session parameters follower did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            for event in read_events(
                self._kafka, [self._topic], start=StartAt.END, follow=True, ready=self._ready, stop=self._stop
            ):
                value = event.value
                if value is not None and value["metadata"]["session_id"] == self._session_id:
                    with self._lock:
                        if self._latest is None or value["version"] > self._latest.version:
                            self._latest = _from_event(value)
        except BaseException as exc:  # surfaced by start() or ignored after shutdown
            self._error = exc
            self._ready.set()

    def latest(self) -> SessionParameters | None:
        """The newest version seen since the follower started, if any."""
        with self._lock:
            return self._latest

    def close(self) -> None:
        """Stop following (returns within about a second)."""
        self._stop.set()
        self._thread.join(timeout=5)
