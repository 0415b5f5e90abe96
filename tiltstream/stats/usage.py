"""Reading and counting in one call: :func:`usage_stats`."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine

from tiltstream.stats.aggregate import UsageStats, summarise
from tiltstream.stats.queries import series_facts

__all__ = ["usage_stats"]


def usage_stats(
    engine: Engine,
    *,
    since: date | None = None,
    microscope: str | None = None,
    session_id: int | None = None,
) -> UsageStats:
    """The statistics of the tilt series on ``engine``'s ISPyB (filters as :func:`series_facts`)."""
    with engine.connect() as connection:
        facts = series_facts(connection, since=since, microscope=microscope, session_id=session_id)
    return summarise(facts)
