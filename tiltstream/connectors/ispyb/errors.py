"""Why a record cannot be written: the sink's permanent errors."""

from __future__ import annotations

__all__ = ["RecordRejectedError", "SinkConfigurationError", "VisitNotFoundError"]


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
