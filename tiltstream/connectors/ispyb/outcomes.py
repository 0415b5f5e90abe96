"""The newest attempt wins: each stage's outcome per subject, in any arrival order.

A stage's AutoProcProgram (one per tilt series, per request for per-version stages) covers many subjects
(the movies of motion correction and CTF; the request of a reconstruction). A subject's outcome is the one
of its newest attempt (``EventMetadata.attempt``, raised by reprocessing and reinjection); at the same
attempt a failure sticks. It is kept where the processing role may write, as a ProcessingJobParameter
``outcome:<subject>`` of the program's job, valued ``"<attempt> ok"`` or ``"<attempt> failed <message>"``,
and only when it says something a first success would not (a failure, or an attempt after the first).

So an older attempt arriving after a newer one changes nothing (:meth:`Outcomes.settle` says it is not
current, and its values are not written), a failure heals once a newer attempt succeeds, and the program's
``processingStatus`` is ``0`` while any subject's current outcome is a failure (``processingMessage`` the
latest such message), ``1`` once none is: a function of the set of events, not of their order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ispyb.sqlalchemy import AutoProcProgram, ProcessingJob, ProcessingJobParameter
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.batch import batch_rows
from tiltstream.connectors.ispyb.rows import Rows

__all__ = ["OUTCOME_PREFIX", "Outcome", "Outcomes", "outcome_key"]

#: ``parameterKey`` prefix of the outcome rows.
OUTCOME_PREFIX = "outcome:"
_KEY_LENGTH = 80  # ProcessingJobParameter.parameterKey in every ISPyB version
_NAMESPACE = uuid.UUID("6a1f0e52-3c0b-5d7e-8b2a-6f7574636f6d")


def outcome_key(subject: str) -> str:
    """The ``parameterKey`` of ``subject``'s outcome (a UUIDv5 of it when the subject is too long)."""
    key = OUTCOME_PREFIX + subject
    return key if len(key) <= _KEY_LENGTH else OUTCOME_PREFIX + uuid.uuid5(_NAMESPACE, subject).hex


@dataclass(frozen=True)
class Outcome:
    """One attempt's outcome for a subject: its attempt number, and the failure message when it failed."""

    attempt: int
    failure: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the attempt failed."""
        return self.failure is not None

    def text(self) -> str:
        """The stored form (``parameterValue``)."""
        return f"{self.attempt} ok" if self.failure is None else f"{self.attempt} failed {self.failure}"

    @classmethod
    def parse(cls, text: str) -> Outcome:
        """Read the stored form back."""
        attempt, _, rest = text.partition(" ")
        status, _, message = rest.partition(" ")
        return cls(int(attempt), message if status == "failed" else None)

    def supersedes(self, old: Outcome) -> bool:
        """Whether this outcome replaces ``old``: a newer attempt, or a failure at the same attempt."""
        if self.attempt != old.attempt:
            return self.attempt > old.attempt
        return self.failed and (not old.failed or (self.failure or "") > (old.failure or ""))


class Outcomes:
    """Outcome rows of the programs a transaction touches, loaded once per program per transaction.

    Parameters
    ----------
    rows
        Checked writes for the database's schema.
    """

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def _loaded(self, session: Session, pj: ProcessingJob) -> dict[str, ProcessingJobParameter]:
        cache: dict[int, dict[str, ProcessingJobParameter]] = session.info.setdefault(
            "tiltstream.outcomes", {}
        )
        found = cache.get(pj.processingJobId)
        if found is None:
            parameters = batch_rows(session).parameters(session, int(pj.processingJobId))
            found = cache[pj.processingJobId] = {
                key: row for key, row in parameters.items() if key.startswith(OUTCOME_PREFIX)
            }
        return found

    def settle(
        self, session: Session, pj: ProcessingJob, app: AutoProcProgram, subject: str, outcome: Outcome
    ) -> tuple[bool, int]:
        """Merge ``outcome`` of ``subject`` into the program; return (whether it is current, rows changed).

        Not current: a newer attempt of the subject is already known, so the caller leaves its values.
        """
        stored = self._loaded(session, pj)
        key = outcome_key(subject)
        row = stored.get(key)
        old = None if row is None else Outcome.parse(str(row.parameterValue))
        changed = 0
        if old is None:
            current = True
            if outcome.failed or outcome.attempt > 1:
                row = self.rows.insert(
                    session, ProcessingJobParameter, processingJobId=pj.processingJobId, parameterKey=key,
                    parameterValue=outcome.text(),
                )  # fmt: skip
                stored[key] = batch_rows(session).parameters(session, int(pj.processingJobId))[key] = row
                changed = 1
        else:
            current = outcome.attempt >= old.attempt
            if outcome.supersedes(old):
                changed = self.rows.assign(row, parameterValue=outcome.text())
        return current, changed + self._status(app, stored)

    def _status(self, app: AutoProcProgram, stored: dict[str, ProcessingJobParameter]) -> int:
        """Status and message from the subjects' current outcomes; 1 when they changed."""
        outcomes = [Outcome.parse(str(row.parameterValue)) for row in stored.values()]
        failures = [o.failure for o in outcomes if o.failure is not None]
        if failures:
            return self.rows.assign(app, processingStatus=0, processingMessage=max(failures))
        return self.rows.assign(app, processingStatus=1, processingMessage=None)
