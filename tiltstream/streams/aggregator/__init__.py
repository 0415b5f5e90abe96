"""The tilt-series aggregator: decides when a tilt series can be reconstructed.

The decision is pure: ``fold.apply_event`` folds typed events (``fold.InputRecord``) into a
``state.SeriesState`` and ``decide.decide`` turns a state into commands and a status.
``app.create_app`` wires it into a faust-streaming application with a RocksDB table keyed by tilt
series.
"""

from tiltstream.streams.aggregator.decide import Command, Decision, decide, next_deadline_ms
from tiltstream.streams.aggregator.fold import INPUT_RECORDS, INPUT_TYPES, InputRecord, apply_event
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import SeriesState, request_id_for

__all__ = [
    "INPUT_RECORDS",
    "INPUT_TYPES",
    "Command",
    "Decision",
    "InputRecord",
    "Rules",
    "SeriesState",
    "apply_event",
    "decide",
    "next_deadline_ms",
    "request_id_for",
]
