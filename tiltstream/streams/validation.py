"""Values checked at the edges: where events are made and where they are consumed.

Non-finite numbers, physically absurd values, NUL bytes and non-POSIX path strings are refused with
the field and the reason (:class:`~tiltstream.streams.errors.InvalidEventError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiltstream.streams.errors import InvalidEventError

__all__ = ["InvalidEventError", "check_event"]


def check_event(record: str, value: Mapping[str, Any]) -> None:
    """Refuse ``value`` of ``record`` (short or full record name) if any field cannot be true.

    Raises
    ------
    InvalidEventError
        Naming the first offending field (dotted path, e.g. ``movie.path``) and the reason.
    """
    del record, value  # filled in by the validation work (issue 16, item 6)
