"""Why a record cannot be written: the sink's permanent errors."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["RecordRejectedError", "SinkConfigurationError", "VisitNotFoundError", "constraint_refusal"]

#: MySQL/MariaDB error numbers that are a row's fault though the driver reports them as operational:
#: ``ER_CONSTRAINT_FAILED`` (a CHECK constraint) and ``ER_SIGNAL_EXCEPTION`` (a trigger's ``SIGNAL``).
_MYSQL_REFUSALS = frozenset({4025, 1644})


class RecordRejectedError(ValueError):
    """This record can never be written (bad value for the schema, unknown data root, not a visit).

    The sink sends it to its group's dead-letter topic with this message and carries on.
    """


class VisitNotFoundError(RecordRejectedError):
    """The event's visit has no BLSession in ISPyB, and the sink does not create visits.

    Visits come from the facility (its user office creates Proposal and BLSession rows). The event is
    parked: the sink dead-letters it with this reason, and ``tiltstream dlq reinject`` writes it once the
    visit exists.
    """

    def __init__(self, visit: str) -> None:
        self.visit = visit
        super().__init__(
            f"visit {visit!r} has no BLSession in ISPyB: parked until the facility creates it "
            "(reinject from the dead-letter topic then; TILTSTREAM_ISPYB_CREATE_VISITS=true lets the sink "
            "create visits itself, for a demo or SQLite database)"
        )


class SinkConfigurationError(RuntimeError):
    """The sink's settings do not fit the database it found (it refuses to start)."""


def constraint_refusal(error: BaseException) -> RecordRejectedError | None:
    """The record's fault hidden in a driver's "operational" error (a CHECK constraint), else None.

    PyMySQL reports a failed CHECK constraint as ``OperationalError``, the class of an outage; left so, the
    sink would retry the batch for ever instead of dead-lettering the row.
    """
    if not isinstance(error, sa.exc.OperationalError):
        return None
    args = getattr(error.orig, "args", ())
    if args and args[0] in _MYSQL_REFUSALS:
        return RecordRejectedError(f"refused by the database: {args[-1]}")
    return None
