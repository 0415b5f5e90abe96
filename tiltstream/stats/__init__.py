"""Usage statistics read from ISPyB (the eBIC paper's Appendix A): per microscope, session, day, type."""

from __future__ import annotations

from tiltstream.stats.aggregate import StatsRow, UsageStats, summarise
from tiltstream.stats.queries import SeriesFacts, series_facts

__all__ = ["SeriesFacts", "StatsRow", "UsageStats", "series_facts", "summarise"]
