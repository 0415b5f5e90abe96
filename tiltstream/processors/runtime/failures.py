"""Building the terminal ``ProcessingFailed`` event of a job that gave up."""

from __future__ import annotations

from typing import Any

from tiltstream.processors.runtime.errors import FailureKind
from tiltstream.processors.runtime.processor import Job, Output
from tiltstream.streams.metadata import make_metadata
from tiltstream.streams.validation import escape_nul

__all__ = ["processing_failed"]

_MAX_MESSAGE_CHARS = 2000


def processing_failed(
    job: Job,
    error: BaseException,
    kind: FailureKind,
    *,
    stage: str,
    subject: tuple[str, str | None, str | None],
    service: str,
    instance: str | None = None,
) -> Output:
    """The ``ProcessingFailed`` for ``job``; its id depends only on the input, so it is re-emitted alike.

    Parameters
    ----------
    job
        The last attempt (its ``attempt`` is the number of attempts made).
    error
        What stopped it.
    kind
        Permanent at once, or retries exhausted.
    stage, subject, service, instance
        Who failed and on what: ``subject`` is ``(subject_id, movie_id, request_id)``.
    """
    subject_id, movie_id, request_id = subject
    meta = job.value["metadata"]
    value: dict[str, Any] = {
        "metadata": make_metadata(
            "ProcessingFailed",
            service=service,
            microscope=meta["microscope"],
            session_id=meta["session_id"],
            tilt_series_id=meta["tilt_series_id"],
            key=(stage, subject_id),
            causation_id=job.event_id,
            attempt=int(meta.get("attempt") or 1),
            instance=instance,
        ),
        "stage": stage,
        "subject_id": subject_id,
        "movie_id": movie_id,
        "request_id": request_id,
        "error_class": type(error).__name__,
        "error_message": escape_nul(str(error) or repr(error))[:_MAX_MESSAGE_CHARS],
        "failure_kind": kind.value,
        "attempts": job.attempt,
        "input_topic": job.topic,
        "input_partition": job.partition,
        "input_offset": job.offset,
    }
    return Output("ProcessingFailed", value)
