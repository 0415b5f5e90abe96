"""Running one input to an outcome: bounded retries with exponential backoff, then give up."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tiltstream.log import get_logger
from tiltstream.processors.runtime.background import Background
from tiltstream.processors.runtime.errors import FailureKind, is_transient
from tiltstream.processors.runtime.processor import Job, Output, Processor
from tiltstream.streams.validation import check_event

__all__ = ["JobOutcome", "RetryPolicy", "run_attempts"]

log = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` attempts; waits ``initial * 2**(n-1)`` seconds, capped, between them."""

    max_attempts: int = 3
    backoff_initial_seconds: float = 2.0
    backoff_max_seconds: float = 60.0

    def backoff_seconds(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        return float(min(self.backoff_initial_seconds * 2 ** (failed_attempt - 1), self.backoff_max_seconds))


@dataclass(frozen=True)
class JobOutcome:
    """What a job came to: outputs to emit, or the error it gave up on (and how)."""

    job: Job
    outputs: list[Output]
    error: BaseException | None = None
    failure_kind: FailureKind | None = None
    seconds: float = 0.0
    cancelled: bool = False


def run_attempts(
    processor: Processor[Any],
    job: Job,
    policy: RetryPolicy,
    *,
    prefetched: Background[Any] | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> JobOutcome:
    """Process ``job`` until it succeeds, fails permanently, runs out of attempts or is cancelled.

    Never raises: every exception becomes part of the outcome. The first attempt uses the
    prefetched input when its loading succeeded; later attempts load again. Outputs are checked
    (:func:`~tiltstream.streams.validation.check_event`) before they count as a success, so one with a
    value that cannot be true (a NaN from a diverged fit) ends in a permanent ``ProcessingFailed``.
    """
    start = time.monotonic()
    attempt = job
    while True:
        try:
            inputs = None
            if prefetched is not None and attempt.attempt == 1:
                try:
                    inputs = prefetched.result()
                except Exception:  # loaded again below, where the error is classified
                    inputs = None
                if inputs is None:
                    inputs = processor.load(attempt.value)
            else:
                inputs = processor.load(attempt.value)
            outputs = processor.process(attempt, inputs)
            for output in outputs:
                check_event(output.record, output.value)
            return JobOutcome(attempt, outputs, seconds=time.monotonic() - start)
        except Exception as exc:
            elapsed = time.monotonic() - start
            if not is_transient(exc):
                return JobOutcome(attempt, [], exc, FailureKind.PERMANENT, elapsed)
            if attempt.attempt >= policy.max_attempts:
                return JobOutcome(attempt, [], exc, FailureKind.RETRIES_EXHAUSTED, elapsed)
            wait = policy.backoff_seconds(attempt.attempt)
            log.warning(
                "transient error, retrying",
                error_class=type(exc).__name__,
                error=str(exc),
                attempt=attempt.attempt,
                backoff_seconds=wait,
            )
            if on_retry is not None:
                on_retry(exc, wait)
            if _cancelled_within(attempt.cancelled, wait):
                return JobOutcome(attempt, [], exc, None, time.monotonic() - start, cancelled=True)
            attempt = dataclasses.replace(attempt, attempt=attempt.attempt + 1)


def _cancelled_within(cancelled: threading.Event, seconds: float) -> bool:
    return cancelled.wait(seconds)
