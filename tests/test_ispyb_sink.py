"""The ISPyB sink as a consumer group on the real broker, against SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition
from ispyb_fixtures import IspybDatabase, register_visit, table_snapshot
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.connectors.ispyb.samples import SessionEvent, sample, session_events
from tiltstream.connectors.ispyb.schema import SchemaMismatchError
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.localdb import LocalMariaDB
from tiltstream.localdb.canonical import CanonicalIspyb
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_consumer, create_producer
from tiltstream.streams.dlq import HEADER_MESSAGE, HEADER_REINJECTED_FROM
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.serde import AvroSerde

pytestmark = pytest.mark.kafka

SERIES, TILTS = 3, 12


def publish(settings: CliSettings, events: list[SessionEvent]) -> None:
    producer = EventProducer(create_producer(settings.kafka), Catalogue(settings.topics))
    producer.wait([producer.send(record, value) for record, value in events])


@pytest.fixture
def topics(pipeline_settings: CliSettings) -> CliSettings:
    apply_topics(create_admin(pipeline_settings.kafka), Catalogue(pipeline_settings.topics).all_topics())
    return pipeline_settings


def first_dead_letter(topics: CliSettings, group: str) -> Message:
    """The first message on ``group``'s dead-letter topic."""
    dlq = Catalogue(topics.topics).dlq(group)
    reader = create_consumer(topics.kafka, f"reader-{uuid.uuid4().hex[:8]}")
    reader.assign([TopicPartition(dlq.name, p, OFFSET_BEGINNING) for p in range(dlq.partitions)])
    deadline = time.monotonic() + 30
    message = None
    while (message is None or message.error() is not None) and time.monotonic() < deadline:
        message = reader.poll(0.5)
    reader.close()
    assert message is not None
    assert message.error() is None
    return message


def sink_settings(settings: CliSettings, url: str, group: str | None = None) -> IspybSinkSettings:
    return IspybSinkSettings(
        database_url=url,
        kafka=settings.kafka,
        topics=settings.topics,
        group_id=group or f"ispyb-{uuid.uuid4().hex[:8]}",
        batch_size=50,
        linger_seconds=0.2,
        retry_initial_seconds=0.2,
        retry_max_seconds=1.0,
    )


def count(engine: Engine, table: str) -> int:
    quote = "`" if engine.dialect.name == "mysql" else '"'
    with engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {quote}{table}{quote}")).scalar_one())


def test_session_then_replay_twice_gives_identical_tables(
    topics: CliSettings, ispyb_database: IspybDatabase, ispyb_engine: Engine
) -> None:
    events = session_events(SERIES, TILTS, failed_series=2)
    publish(topics, events)
    url = ispyb_engine.url.render_as_string(hide_password=False)
    IspybSink(sink_settings(topics, url), engine=ispyb_engine).run(until_caught_up=True)
    first = ispyb_database.new_rows()
    assert len(first["Movie"]) == SERIES * TILTS
    assert len(first["CTF"]) == SERIES * TILTS - 1
    assert len(first["Tomogram"]) == SERIES
    assert len(first["TiltImageAlignment"]) == SERIES * TILTS
    for _ in range(2):  # a new group reads every topic from its first offset
        IspybSink(sink_settings(topics, url), engine=ispyb_engine).run(until_caught_up=True)
        assert ispyb_database.new_rows() == first


@pytest.mark.parametrize("ispyb_database", ["mariadb"], indirect=True)
def test_poison_record_goes_to_the_dead_letter_topic(topics: CliSettings, ispyb_engine: Engine) -> None:
    poison = sample("MovieAcquired", 7, 1)
    poison["movie"] = {"root": "raw", "path": "p" * 300 + ".tiff"}
    events = [("MovieAcquired", sample("MovieAcquired", 7, 0)), ("MovieAcquired", poison)]
    events += [("MovieAcquired", sample("MovieAcquired", 7, 2))]
    publish(topics, events)
    encoded_poison = AvroSerde().encode("MovieAcquired", poison)
    group = f"ispyb-{uuid.uuid4().hex[:8]}"
    url = ispyb_engine.url.render_as_string(hide_password=False)
    sink = IspybSink(sink_settings(topics, url, group), engine=ispyb_engine)
    sink.run(until_caught_up=True)
    assert count(ispyb_engine, "Movie") == 2  # the records around it are written
    assert sink.dead_lettered._value.get() == 1
    message = first_dead_letter(topics, group)
    assert message.value() == encoded_poison
    headers = dict(message.headers() or [])
    reason = headers[HEADER_MESSAGE]
    assert isinstance(reason, bytes)
    assert b"Movie.movieFullPath holds 255 characters" in reason


@pytest.mark.parametrize("ispyb_database", ["mariadb"], indirect=True)
def test_records_refused_by_a_narrow_column_are_written_once_the_dba_widens_it(
    topics: CliSettings, ispyb_engine: Engine, ispyb_admin: Engine
) -> None:
    """The sink measures values against the schema it probed; after a refusal it looks again."""
    with ispyb_admin.begin() as db:
        db.execute(sa.text("ALTER TABLE Movie MODIFY movieFullPath VARCHAR(20)"))
    publish(topics, [("MovieAcquired", sample("MovieAcquired", 6, tilt)) for tilt in range(2)])
    group = f"ispyb-{uuid.uuid4().hex[:8]}"
    url = ispyb_engine.url.render_as_string(hide_password=False)
    sink = IspybSink(sink_settings(topics, url, group), engine=ispyb_engine)
    sink.run(until_caught_up=True)
    assert count(ispyb_engine, "Movie") == 0
    assert sink.dead_lettered._value.get() == 2
    reason = dict(first_dead_letter(topics, group).headers() or [])[HEADER_MESSAGE]
    assert isinstance(reason, bytes)
    assert b"Movie.movieFullPath holds 20 characters" in reason

    with ispyb_admin.begin() as db:
        db.execute(sa.text("ALTER TABLE Movie MODIFY movieFullPath VARCHAR(255)"))
    reinjected = CliRunner().invoke(create_app(topics), ["dlq", "reinject", group, "--execute"])
    assert reinjected.exit_code == 0, reinjected.output
    sink.run(until_caught_up=True)  # the same sink: its first probe still says 20
    assert count(ispyb_engine, "Movie") == 2
    assert sink.dead_lettered._value.get() == 2  # nothing refused again


@pytest.mark.parametrize("ispyb_database", ["mariadb"], indirect=True)
def test_a_record_reinjected_for_one_sink_group_is_skipped_by_another(
    topics: CliSettings, ispyb_engine: Engine
) -> None:
    """The reinjection rule in the sink: only the group whose dead-letter topic it came from writes it."""
    catalogue = Catalogue(topics.topics)
    group, other = (f"ispyb-{uuid.uuid4().hex[:8]}" for _ in range(2))
    producer = EventProducer(create_producer(topics.kafka), catalogue)
    plain, ours, theirs = (sample("MovieAcquired", 8, tilt) for tilt in range(3))
    producer.wait(
        [
            producer.send("MovieAcquired", plain),
            producer.send(
                "MovieAcquired", ours, headers=[(HEADER_REINJECTED_FROM, f"{catalogue.dlq(group).name}/0/0")]
            ),
            producer.send(
                "MovieAcquired",
                theirs,
                headers=[(HEADER_REINJECTED_FROM, f"{catalogue.dlq(other).name}/0/0")],
            ),
        ]
    )
    url = ispyb_engine.url.render_as_string(hide_password=False)
    first = IspybSink(sink_settings(topics, url, group), engine=ispyb_engine)
    first.run(until_caught_up=True)
    assert count(ispyb_engine, "Movie") == 2  # the plain movie and the one reinjected for this group
    second = IspybSink(sink_settings(topics, url, other), engine=ispyb_engine)
    second.run(until_caught_up=True)
    assert count(ispyb_engine, "Movie") == 3  # the other group writes its own, skips the first's
    for sink in (first, second):
        assert sink.consumer_metrics.skipped._value.get() == 1
        assert sink.dead_lettered._value.get() == 0


def test_schema_check_at_start(topics: CliSettings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with pytest.raises(SchemaMismatchError, match="table Person"):
        IspybSink(sink_settings(topics, url)).run(until_caught_up=True)


@pytest.fixture
def own_mariadb(database_root: Path) -> Iterator[LocalMariaDB]:
    with LocalMariaDB(database_root / f"outage-{uuid.uuid4().hex[:6]}") as server:
        yield server


def test_database_outage_loses_nothing(topics: CliSettings, own_mariadb: LocalMariaDB) -> None:
    canonical = CanonicalIspyb(own_mariadb)  # Diamond's schema on a server of the test's own
    canonical.build_template()
    canonical.create("ispyb")
    admin = create_engine(canonical.url("ispyb"))
    register_visit(admin)
    url = canonical.url("ispyb", canonical.sink)
    engine = create_engine(url)
    events = session_events(SERIES, TILTS)
    half = len(events) // 2
    sink = IspybSink(sink_settings(topics, url), engine=engine)
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    runner.start()
    try:
        publish(topics, events[:half])
        deadline = time.monotonic() + 60
        while count(admin, "Movie") < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        own_mariadb.stop()
        publish(topics, events[half:])
        deadline = time.monotonic() + 60
        while sink.retries._value.get() < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sink.retries._value.get() >= 3  # it kept trying while the database was down
        own_mariadb.start()
        deadline = time.monotonic() + 90
        while count(admin, "TiltImageAlignment") < SERIES * TILTS and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
    snapshot = table_snapshot(admin)
    assert len(snapshot["Movie"]) == SERIES * TILTS
    assert len(snapshot["MotionCorrection"]) == SERIES * TILTS
    assert len(snapshot["CTF"]) == SERIES * TILTS
    assert len(snapshot["Tomogram"]) == SERIES
    assert len(snapshot["ProcessedTomogram"]) == 2 * SERIES
    engine.dispose()
    admin.dispose()


def test_unknown_visit_is_parked_in_the_dead_letter_topic(topics: CliSettings, ispyb_engine: Engine) -> None:
    """An event of a visit ISPyB lacks is dead-lettered with the reason; the known visit's carry on."""
    events = [("MovieAcquired", sample("MovieAcquired", 1, tilt)) for tilt in range(2)]
    events.insert(1, ("MovieAcquired", sample("MovieAcquired", 1, 0, "cm49999-1")))
    publish(topics, events)
    group = f"ispyb-{uuid.uuid4().hex[:8]}"
    url = ispyb_engine.url.render_as_string(hide_password=False)
    sink = IspybSink(sink_settings(topics, url, group), engine=ispyb_engine)
    sink.run(until_caught_up=True)
    assert count(ispyb_engine, "Movie") == 2
    assert sink.dead_lettered._value.get() == 1
    message = first_dead_letter(topics, group)
    assert message.value() == AvroSerde().encode("MovieAcquired", events[1][1])
    reason = dict(message.headers() or [])[HEADER_MESSAGE]
    assert isinstance(reason, bytes)
    assert b"'cm49999-1' has no BLSession" in reason


class Statements:
    """Counts the statements and transactions the sink sends through ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.statements = self.transactions = 0
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "begin", self._begin)

    def _statement(self, *_: object) -> None:
        self.statements += 1

    def _begin(self, *_: object) -> None:
        self.transactions += 1


@pytest.mark.parametrize("ispyb_database", ["mariadb", "postgresql"], indirect=True)
def test_a_record_refused_by_a_constraint_costs_logarithmic_statements(
    topics: CliSettings, ispyb_database: IspybDatabase, ispyb_engine: Engine, ispyb_admin: Engine
) -> None:
    """One row of a batch of N that a CHECK constraint refuses: N-1 rows, one dead letter, O(log N) work."""
    table = "`Movie`" if ispyb_admin.dialect.name == "mysql" else '"Movie"'
    with ispyb_admin.begin() as db:
        db.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT tilt_range CHECK (abs(angle) <= 70)"))
    n, bad = 64, 32
    events = [("MovieAcquired", sample("MovieAcquired", 9, tilt)) for tilt in range(n)]
    events[bad][1]["tilt_angle_degrees"] = 85.0
    publish(topics, events)
    group = f"ispyb-{uuid.uuid4().hex[:8]}"
    url = ispyb_engine.url.render_as_string(hide_password=False)
    settings = sink_settings(topics, url, group).model_copy(update={"batch_size": n, "linger_seconds": 5.0})
    counted = Statements(ispyb_engine)
    sink = IspybSink(settings, engine=ispyb_engine)
    sink.run(until_caught_up=True)
    assert len(ispyb_database.new_rows()["Movie"]) == n - 1
    assert sink.dead_lettered._value.get() == 1
    message = first_dead_letter(topics, group)
    assert message.value() == AvroSerde().encode("MovieAcquired", events[bad][1])
    reason = dict(message.headers() or [])[HEADER_MESSAGE]
    assert isinstance(reason, bytes)
    assert b"tilt_range" in reason
    halves, transactions = counted.statements, counted.transactions
    restarted = IspybSink(settings, engine=ispyb_engine)  # the same group: its offsets were committed
    restarted.run(until_caught_up=True)
    assert restarted.registry.get_sample_value("ispyb_sink_batch_seconds_count") == 0  # nothing written
    assert restarted.dead_lettered._value.get() == 0
    assert len(ispyb_database.new_rows()["Movie"]) == n - 1

    def write_cost(batch: int, series: int) -> int:  # statements to write n clean events, batch at a time
        clean = [("MovieAcquired", sample("MovieAcquired", series, tilt)) for tilt in range(n)]
        before = counted.statements
        for start in range(0, n, batch):
            sink.write(clean[start : start + batch])
        return counted.statements - before

    whole, one_by_one = write_cost(n, 10), write_cost(1, 11)
    print(f"{n} events, one refused: {halves} statements in {transactions} transactions; clean: "
          f"{whole} in one transaction, {one_by_one} one by one")  # fmt: skip
    assert transactions <= 2 + 2 * math.ceil(math.log2(n))  # one by one: n + 1
    assert halves <= (2 + 2 * math.ceil(math.log2(n))) * whole  # O(log n) transactions of O(1)
    assert halves < one_by_one / 2
