"""Why a record cannot be written: the sink's permanent errors."""

from __future__ import annotations

__all__ = ["RecordRejectedError"]


class RecordRejectedError(ValueError):
    """This record can never be written (bad value for the schema, unknown data root, not a visit).

    The sink sends it to its group's dead-letter topic with this message and carries on.
    """
