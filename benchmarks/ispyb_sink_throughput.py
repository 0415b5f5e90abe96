"""ISPyB sink throughput on real MariaDB and PostgreSQL servers, and the time to rebuild a day by replay.

1. Rows per second written with batches of ``--batch`` events per transaction against one event per
   transaction (the baseline, in the same process on the same server), on MariaDB and PostgreSQL.
2. Rebuilding the database of a four-microscope day (200 tilt series of 41 tilts, two reconstruction
   versions each; ``--scale`` shrinks it) by replay: the live run writes the events as they come (batches
   of ``--live-batch``) into one database, the events are published to a local Kafka broker, then a new
   consumer group reads every topic from its first offset into an empty database (the canonical schema on
   MariaDB, the visits registered by the facility; the ORM-built one on PostgreSQL). The rebuilt database
   is then diffed row by row against the live one (ids and timestamps aside,
   :mod:`tiltstream.connectors.ispyb.content`) and the differences printed.

Run: ``.venv/bin/python benchmarks/ispyb_sink_throughput.py [--scale 0.1] [--series 8]``.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from ispyb.sqlalchemy import BLSession, Person, Proposal
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.content import content_differences, ispyb_content
from tiltstream.connectors.ispyb.samples import SessionEvent, session_events
from tiltstream.connectors.ispyb.schema import create_tables
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.localdb import LocalDatabaseServer, LocalMariaDB, LocalPostgres
from tiltstream.localdb.canonical import CanonicalIspyb
from tiltstream.settings import KafkaSettings, LocalBrokerSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.broker import LocalBroker
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer


def fresh_sink(server: LocalDatabaseServer, **settings: object) -> IspybSink:
    """A sink on a new, empty (ORM-built) database of ``server``; it creates the sample visit itself."""
    url = server.create_database(f"b{uuid.uuid4().hex[:10]}")
    engine = create_engine(url)
    create_tables(engine)
    config = IspybSinkSettings(database_url=url, create_visits=True, **settings)  # type: ignore[arg-type]
    return IspybSink(config, engine=engine)


def rows_per_second(server: LocalDatabaseServer, events: list[SessionEvent], batch: int) -> float:
    """Rows written per second when ``batch`` events share a transaction."""
    sink = fresh_sink(server)
    began = time.perf_counter()
    rows = 0
    for start in range(0, len(events), batch):
        rows += sink.write(events[start : start + batch])
    seconds = time.perf_counter() - began
    sink.engine.dispose()
    return rows / seconds


def day_events(scale: float) -> list[SessionEvent]:
    """Four microscopes' sessions with 200 tilt series in all (times ``scale``)."""
    per_session = max(1, round(50 * scale))
    events: list[SessionEvent] = []
    for microscope in range(1, 5):
        events += session_events(per_session, 41, versions=2, session=f"cm4000{microscope}-1")
    return events


def register_visits(admin: Engine, visits: list[str]) -> None:
    """What the facility's user office does: a Person, Proposal and BLSession per visit (``cm40001-1``)."""

    def insert(db: sa.Connection, model: type[object], **values: object) -> int:
        key = db.execute(sa.insert(model.__table__).values(**values)).inserted_primary_key  # type: ignore[attr-defined]
        assert key is not None
        return int(key[0])

    with admin.begin() as db:
        for visit in visits:
            code, number, session = visit[:2], visit[2:].split("-")[0], int(visit.split("-")[1])
            person = insert(db, Person, login=f"pi-{code}{number}", familyName="PI")
            proposal = insert(
                db, Proposal, personId=person, proposalCode=code, proposalNumber=number, title="tomo"
            )
            insert(db, BLSession, proposalId=proposal, visit_number=session, beamLineName="m02")


class DayDatabases:
    """Pairs of empty databases (live, rebuilt) with the day's visits: canonical on MariaDB, else ORM."""

    def __init__(self, server: LocalDatabaseServer, visits: list[str]) -> None:
        self.server = server
        self.visits = visits
        self.canonical = CanonicalIspyb(server) if isinstance(server, LocalMariaDB) else None
        if self.canonical is not None:
            self.canonical.build_template()

    def create(self) -> tuple[str, str]:
        """A new database: (the sink's URL, the administrator's URL)."""
        name = f"d{uuid.uuid4().hex[:10]}"
        if self.canonical is None:
            url = self.server.create_database(name)
            create_tables(create_engine(url))
            admin = url
        else:
            self.canonical.create(name)
            url, admin = self.canonical.url(name, self.canonical.sink), self.canonical.url(name)
        register_visits(create_engine(admin), self.visits)
        return url, admin


def live_run(url: str, day: list[SessionEvent], batch: int) -> float:
    """Write the day as a live sink would, ``batch`` events per transaction in arrival order; seconds."""
    sink = IspybSink(IspybSinkSettings(database_url=url), engine=create_engine(url))
    began = time.perf_counter()
    for start in range(0, len(day), batch):
        sink.write(day[start : start + batch])
    sink.engine.dispose()
    return time.perf_counter() - began


def rebuild_seconds(url: str, kafka: KafkaSettings, topics: TopicSettings) -> float:
    """Seconds for a new consumer group to replay every topic into the (empty) database at ``url``."""
    config = IspybSinkSettings(
        database_url=url, kafka=kafka, topics=topics, group_id=f"rebuild-{uuid.uuid4().hex[:8]}"
    )
    sink = IspybSink(config, engine=create_engine(url))
    began = time.perf_counter()
    sink.run(until_caught_up=True)
    seconds = time.perf_counter() - began
    sink.engine.dispose()
    return seconds


def differences(live_admin: str, rebuilt_admin: str) -> list[str]:
    """Row-by-row differences between the live and the rebuilt database (ids and timestamps aside)."""
    contents = []
    for url in (live_admin, rebuilt_admin):
        engine = create_engine(url)
        contents.append(ispyb_content(engine, Path("/nonexistent")))
        engine.dispose()
    return content_differences(contents[0], contents[1])


def rebuild_day(
    servers: list[LocalDatabaseServer], day: list[SessionEvent], root: Path, args: argparse.Namespace
) -> None:
    """Live run, publish, replay into an empty database, diff; print the figures per server."""
    visits = sorted({value["metadata"]["session_id"] for _, value in day})
    series = len({value["metadata"]["tilt_series_id"] for _, value in day})
    pairs = {}
    for server in servers:
        databases = DayDatabases(server, visits)
        live, rebuilt = databases.create(), databases.create()
        live_seconds = live_run(live[0], day, args.live_batch)
        pairs[type(server).__name__] = (live, rebuilt, live_seconds)
    topics = TopicSettings(prefix=f"bench{uuid.uuid4().hex[:6]}", partitions=6)
    broker = LocalBroker(LocalBrokerSettings(state_dir=root / "kafka", port=0, controller_port=0))
    with broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        catalogue = Catalogue(topics)
        apply_topics(create_admin(kafka), catalogue.all_topics())
        producer = EventProducer(create_producer(kafka), catalogue)
        producer.wait([producer.send(record, value) for record, value in day], timeout=300)
        print(f"rebuild by replay: {series} tilt series, {len(day)} events (scale {args.scale}):")
        for name, (live, rebuilt, live_seconds) in pairs.items():
            seconds = rebuild_seconds(rebuilt[0], kafka, topics)
            diff = differences(live[1], rebuilt[1])
            schema = "canonical" if name == "LocalMariaDB" else "ORM-built"
            print(
                f"  {name:13s} ({schema}) live run {live_seconds:7.1f} s, rebuild {seconds:7.1f} s "
                f"({len(day) / seconds:.0f} events/s); diff: "
                + ("identical" if not diff else f"{len(diff)} differences")
            )
            for line in itertools.islice(diff, 10):
                print(f"    {line}")


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=8, help="tilt series for the rows/s comparison")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction when batching")
    parser.add_argument("--live-batch", type=int, default=20, help="events per transaction, live run")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 200-series day to replay")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tiltstream-bench-"))
    root.chmod(0o711)
    servers: list[LocalDatabaseServer] = [LocalMariaDB(root / "mariadb"), LocalPostgres(root / "postgres")]
    try:
        for server in servers:
            server.start()
        events = session_events(args.series, 41, versions=2)
        print(f"rows/s, {len(events)} events ({args.series} series x 41 tilts):")
        for server in servers:
            single = rows_per_second(server, events, 1)
            batched = rows_per_second(server, events, args.batch)
            name = type(server).__name__
            print(
                f"  {name:13s} one event per transaction {single:8.0f} rows/s, "
                f"batches of {args.batch} {batched:8.0f} rows/s, ratio {batched / single:.1f}x"
            )
        rebuild_day(servers, day_events(args.scale), root, args)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
