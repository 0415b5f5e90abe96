"""The contract between the runtime and a processing step."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from tiltstream.processors.runtime.data_roots import DataRoots
from tiltstream.streams.metadata import make_metadata

__all__ = ["Job", "Output", "Processor"]

InputT = TypeVar("InputT")


@dataclass(frozen=True)
class Job:
    """One attempt at processing one input event."""

    value: dict[str, Any]  # the decoded input event
    topic: str
    partition: int
    offset: int
    attempt: int  # 1-based attempt within this delivery (retries after transient errors)
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def event_id(self) -> str:
        """The input's event id: the ``causation_id`` of what the job emits."""
        return str(self.value["metadata"]["event_id"])


@dataclass(frozen=True)
class Output:
    """An event to emit: record short name and value."""

    record: str
    value: dict[str, Any]


class Processor(ABC, Generic[InputT]):
    """A processing step: one input record in, events out.

    Subclasses set :attr:`stage`, :attr:`input_record` and :attr:`output_record` and implement
    :meth:`process`. :meth:`load` is the input I/O; the runtime calls it ahead of time for the next
    message while the current one computes (prefetch). Raise the errors of
    :mod:`~tiltstream.processors.runtime.errors` to choose what happens on failure.
    Outputs must be written atomically at deterministic paths and events built with deterministic
    ids (``causation_id`` = the input's event id), so a redelivered message redoes harmless work.

    Parameters
    ----------
    roots
        Where data paths resolve.
    output_root
        Root name under which outputs are written.
    """

    stage: ClassVar[str]
    input_record: ClassVar[str]
    output_record: ClassVar[str]

    def __init__(self, roots: DataRoots, output_root: str = "processed") -> None:
        self.roots = roots
        self.output_root = output_root

    def load(self, value: dict[str, Any]) -> InputT | None:
        """Read the input of ``value`` (prefetchable I/O); None when :meth:`process` reads it itself."""
        return None

    @abstractmethod
    def process(self, job: Job, inputs: InputT | None) -> list[Output]:
        """Do the work for ``job`` and return the events to emit."""

    def output_metadata(
        self, job: Job, key: tuple[object, ...], instance: str | None = None
    ) -> dict[str, Any]:
        """Metadata of an event made from ``job``'s input: same series and attempt, caused by the input.

        ``key`` names what the output is about (a movie, a request and model ...), so its event id is
        the same every time the input is redone.
        """
        meta = job.value["metadata"]
        return make_metadata(
            self.output_record,
            service=self.stage,
            microscope=meta["microscope"],
            session_id=meta["session_id"],
            tilt_series_id=meta["tilt_series_id"],
            key=key,
            causation_id=job.event_id,
            attempt=int(meta.get("attempt") or 1),
            instance=instance,
        )

    def subject(self, value: dict[str, Any]) -> tuple[str, str | None, str | None]:
        """``(subject_id, movie_id, request_id)`` naming the input in a ``ProcessingFailed``."""
        movie_id = value.get("movie_id")
        if movie_id is not None:
            return str(movie_id), str(movie_id), None
        request_id = str(value.get("request_id") or value["metadata"]["event_id"])
        return request_id, None, request_id
