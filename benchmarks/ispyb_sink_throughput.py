"""ISPyB sink throughput on real MariaDB and PostgreSQL servers, and the time to rebuild a day by replay.

1. Rows per second written with batches of ``--batch`` events per transaction against one event per
   transaction (the baseline, in the same process on the same server), on MariaDB and PostgreSQL.
2. Rebuilding the database of a four-microscope day (200 tilt series of 41 tilts, two reconstruction
   versions each; ``--scale`` shrinks it) by replay: the events are published to a local Kafka broker, then a
   new consumer group reads every topic from its first offset into an empty database.

Run: ``.venv/bin/python benchmarks/ispyb_sink_throughput.py [--scale 0.1] [--series 8]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from tiltstream.connectors.ispyb.samples import SessionEvent, session_events
from tiltstream.connectors.ispyb.schema import create_tables
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.localdb import LocalDatabaseServer, LocalMariaDB, LocalPostgres
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


def rebuild_seconds(server: LocalDatabaseServer, kafka: KafkaSettings, topics: TopicSettings) -> float:
    """Seconds for a new consumer group to replay every topic into an empty database."""
    sink = fresh_sink(server, kafka=kafka, topics=topics, group_id=f"rebuild-{uuid.uuid4().hex[:8]}")
    began = time.perf_counter()
    sink.run(until_caught_up=True)
    seconds = time.perf_counter() - began
    sink.engine.dispose()
    return seconds


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=8, help="tilt series for the rows/s comparison")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction when batching")
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
        day = day_events(args.scale)
        series = len({value["metadata"]["tilt_series_id"] for _, value in day})
        topics = TopicSettings(prefix=f"bench{uuid.uuid4().hex[:6]}", partitions=6)
        broker = LocalBroker(LocalBrokerSettings(state_dir=root / "kafka", port=0, controller_port=0))
        with broker:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            catalogue = Catalogue(topics)
            apply_topics(create_admin(kafka), catalogue.all_topics())
            producer = EventProducer(create_producer(kafka), catalogue)
            producer.wait([producer.send(record, value) for record, value in day], timeout=300)
            print(f"rebuild by replay: {series} tilt series, {len(day)} events (scale {args.scale}):")
            for server in servers:
                seconds = rebuild_seconds(server, kafka, topics)
                print(f"  {type(server).__name__:13s} {seconds:7.1f} s ({len(day) / seconds:.0f} events/s)")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
