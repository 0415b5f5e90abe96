"""The contract between the runtime and a processing step.

The runtime hands a step its input as the decoded dict (:attr:`Job.value`) and sends each
:class:`Output`'s dict. Step code works on the typed records of :mod:`tiltstream.streams.events`
on both sides: :meth:`Job.event` turns the input into its record, :meth:`Output.of` turns a built
record back into what the runtime sends, so mypy checks every field a step reads and writes.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, Protocol, Self, TypeVar

from tiltstream.processors.runtime.data_roots import DataRoots
from tiltstream.processors.runtime.output_paths import series_path
from tiltstream.streams.events import CODECS, DataPath, EventMetadata
from tiltstream.streams.metadata import make_metadata

__all__ = ["EventRecord", "Job", "Output", "Processor"]

InputT = TypeVar("InputT")


class EventRecord(Protocol):
    """What every record of :mod:`tiltstream.streams.events` offers: the dict form both ways."""

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Self:
        """Build the record from its dict form."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The record's dict form."""
        ...


RecordT = TypeVar("RecordT", bound=EventRecord)


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

    def event(self, kind: type[RecordT]) -> RecordT:
        """The input as its typed record, e.g. ``job.event(MovieAcquired)``."""
        return kind.from_dict(self.value)


@dataclass(frozen=True)
class Output:
    """An event to emit: record short name and value."""

    record: str
    value: dict[str, Any]

    @classmethod
    def of(cls, event: EventRecord) -> Output:
        """The output for a typed record of :mod:`tiltstream.streams.events`."""
        codec = CODECS.get(type(event))
        if codec is None:
            raise TypeError(f"{type(event).__name__} is not a record of tiltstream.streams.events")
        return cls(codec.record.rpartition(".")[2], event.to_dict())


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

    def resolve(self, data_path: DataPath) -> Path:
        """The local path of an input file, inside its root and regular (:meth:`DataRoots.input_file`)."""
        return self.roots.input_file(data_path.to_dict())

    def open_input(self, data_path: DataPath) -> IO[bytes]:
        """An input file open for reading with the read timeout (:meth:`DataRoots.open_input`)."""
        return self.roots.open_input(data_path.to_dict())

    def series_output_path(self, metadata: EventMetadata, folder: str, name: str) -> tuple[DataPath, Path]:
        """:meth:`output_path` of ``name`` in the series' own folder (see ``output_paths``)."""
        return self.output_path(series_path(metadata.session_id, metadata.tilt_series_id, folder, name))

    def output_path(self, relative: str) -> tuple[DataPath, Path]:
        """The data path and local path of an output file under :attr:`output_root`."""
        data_path, local = self.roots.output(self.output_root, relative)
        return DataPath.from_dict(data_path), local

    def output_metadata(
        self, job: Job, key: tuple[object, ...], instance: str | None = None
    ) -> EventMetadata:
        """Metadata of an event made from ``job``'s input: same series and attempt, caused by the input.

        ``key`` names what the output is about (a movie, a request and model ...), so its event id is
        the same every time the input is redone.
        """
        meta = EventMetadata.from_dict(job.value["metadata"])
        made = make_metadata(
            self.output_record,
            service=self.stage,
            microscope=meta.microscope,
            session_id=meta.session_id,
            tilt_series_id=meta.tilt_series_id,
            key=key,
            causation_id=meta.event_id,
            attempt=meta.attempt or 1,
            instance=instance,
        )
        return EventMetadata.from_dict(made)

    def subject(self, value: dict[str, Any]) -> tuple[str, str | None, str | None]:
        """``(subject_id, movie_id, request_id)`` naming the input in a ``ProcessingFailed``."""
        movie_id = value.get("movie_id")
        if movie_id is not None:
            return str(movie_id), str(movie_id), None
        request_id = str(value.get("request_id") or value["metadata"]["event_id"])
        return request_id, None, request_id
