"""A batch's round trips: per-tilt rows loaded and written per table, not per event (SQLite)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tiltstream.connectors.ispyb.samples import session_events
from tiltstream.connectors.ispyb.schema import create_tables
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine


def _statements(tmp_path: Path, batch: int) -> tuple[int, int]:
    url = f"sqlite:///{tmp_path}/b{batch}.sqlite"
    engine = create_engine(url)
    create_tables(engine)
    sink = IspybSink(IspybSinkSettings(database_url=url, create_visits=True), engine=engine)
    events = session_events(2, 41, versions=2)
    count = [0]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def counted(*_: object) -> None:
        count[0] += 1

    for start in range(0, len(events), batch):
        sink.write(events[start : start + batch])
    return count[0], len(events)


def test_a_batch_costs_far_fewer_statements_than_its_events(tmp_path: Path) -> None:
    batched, events = _statements(tmp_path, len(session_events(2, 41, versions=2)))
    single, _ = _statements(tmp_path, 1)
    assert batched < events  # per-tilt rows go per table, not per event (it was ~10 per event)
    assert single > 3 * batched


def _statements_for(tmp_path: Path, series: int) -> int:
    """Statements to write ``series`` whole tilt series (41 tilts, two versions) in one batch (SQLite)."""
    url = f"sqlite:///{tmp_path}/s{series}.sqlite"
    engine = create_engine(url)
    create_tables(engine)
    sink = IspybSink(IspybSinkSettings(database_url=url, create_visits=True), engine=engine)
    sink.write(session_events(1, 41, versions=2, first_series=100))  # the probe and the visit: out of it
    count = [0]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def counted(*_: object) -> None:
        count[0] += 1

    sink.write(session_events(series, 41, versions=2))
    engine.dispose()
    return count[0]


def test_jobs_programs_and_tomograms_of_a_batch_cost_statements_per_table(tmp_path: Path) -> None:
    """Each extra series in a batch costs a bounded number of statements: 57 when jobs, programs, job
    parameters, tomograms and processed tomograms were looked up (and the jobs and programs inserted) one
    stage at a time; 30 with them loaded per table per batch and the missing jobs and programs inserted
    together."""
    one, four = _statements_for(tmp_path, 1), _statements_for(tmp_path, 4)
    assert (four - one) / 3 <= 32
