"""The aggregator against the real broker: one ``tiltstream aggregate`` process serves every test here."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest
from aggregator_fixtures import AggregatorProcess, Cluster, read_topic, wait_for
from aggregator_scenarios import TiltPlan, build_scenario
from confluent_kafka import Producer

from tiltstream.streams.clients import create_producer
from tiltstream.streams.dlq import HEADER_REINJECTED_FROM
from tiltstream.streams.reader import ReadEvent, read_events
from tiltstream.streams.serde import AvroSerde

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

GRACE_SECONDS = 6
INACTIVITY_SECONDS = 8


@pytest.fixture(scope="module")
def aggregator(aggregator_cluster: Cluster) -> Iterator[AggregatorProcess]:
    process = aggregator_cluster.start(
        "agg-broker",
        "broker",
        grace_seconds=GRACE_SECONDS,
        inactivity_seconds=INACTIVITY_SECONDS,
        min_usable_tilts=3,
        standby_replicas=0,
    )
    yield process
    process.kill()


def commands_for(events: list[ReadEvent], series_id: str) -> list[dict[str, object]]:
    return [e.value for e in events if e.key == series_id and e.value is not None]


def test_out_of_order_duplicates_retakes_and_a_failed_tilt(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    plans = [
        TiltPlan("used"),
        TiltPlan("used", retake=True, retake_outcome="failed"),
        TiltPlan("failed"),
        TiltPlan("used"),
        TiltPlan("ctf-fit", retake=True, retake_outcome="used"),
        TiltPlan("used"),
    ]
    scenario = build_scenario(plans, series=11)
    events = list(scenario.events)
    rng = random.Random(11)
    rng.shuffle(events)
    events += rng.sample(scenario.events, 8)  # duplicates, delivered again later
    aggregator_cluster.send(events)
    found = wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: bool(commands_for(evs, scenario.tilt_series_id)),
    )
    (command,) = commands_for(found, scenario.tilt_series_id)
    assert command["request_id"] == f"{scenario.tilt_series_id}:v1"
    assert command["reason"] == "complete"
    tilts = command["tilts"]
    assert isinstance(tilts, list)
    assert {t["movie_id"]: t["exclusion_reason"] for t in tilts} == scenario.expected
    assert {t["exclusion_reason"] for t in tilts} == {None, "failed", "ctf-fit"}
    status = wait_for(
        aggregator_cluster,
        "tiltseries.status",
        lambda evs: any(v.get("state") == "requested" for v in commands_for(evs, scenario.tilt_series_id)),
    )
    last = commands_for(status, scenario.tilt_series_id)[-1]
    assert (last["state"], last["acquired_tilts"], last["failed_tilts"], last["excluded_tilts"]) == (
        "requested",
        6,
        1,
        2,
    )


def test_grace_period_emits_with_the_unprocessed_tilt_missing(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    scenario = build_scenario([TiltPlan("used")] * 4 + [TiltPlan("unprocessed")], series=12)
    aggregator_cluster.send(scenario.events)
    found = wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: bool(commands_for(evs, scenario.tilt_series_id)),
    )
    (command,) = commands_for(found, scenario.tilt_series_id)
    assert command["reason"] == "grace-period-expired"
    assert command["missing_tilt_count"] == 1


def test_acquisition_that_never_ends_is_decided_after_inactivity_and_grace(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    scenario = build_scenario([TiltPlan("used")] * 4 + [TiltPlan("unprocessed")], series=16, ended=False)
    assert all(record != "TiltSeriesAcquisitionEnded" for record, _ in scenario.events)
    aggregator_cluster.send(scenario.events)
    found = wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: bool(commands_for(evs, scenario.tilt_series_id)),
    )
    (command,) = commands_for(found, scenario.tilt_series_id)
    assert command["request_id"] == f"{scenario.tilt_series_id}:v1"
    assert command["reason"] == "grace-period-expired"  # taken as ended, then the unprocessed tilt waited
    assert command["missing_tilt_count"] == 1
    tilts = command["tilts"]
    assert isinstance(tilts, list)
    assert {t["movie_id"]: t["exclusion_reason"] for t in tilts} == scenario.expected
    status = wait_for(
        aggregator_cluster,
        "tiltseries.status",
        lambda evs: any(v.get("state") == "requested" for v in commands_for(evs, scenario.tilt_series_id)),
    )
    states = [v["state"] for v in commands_for(status, scenario.tilt_series_id)]
    assert states[0] == "acquiring"  # it was never announced ended
    assert "waiting" in states  # taken as ended, waiting for the unprocessed tilt


def test_late_tilt_leads_to_version_two(aggregator_cluster: Cluster, aggregator: AggregatorProcess) -> None:
    plans = [TiltPlan("used")] * 4
    scenario = build_scenario(plans, series=13)
    aggregator_cluster.send(scenario.events)
    wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: bool(commands_for(evs, scenario.tilt_series_id)),
    )
    late = build_scenario([*plans, TiltPlan("used")], series=13)
    aggregator_cluster.send(
        [e for e in late.events if e not in scenario.events and e[0] != "TiltSeriesAcquisitionEnded"]
    )
    found = wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: len(commands_for(evs, scenario.tilt_series_id)) >= 2,
    )
    first, second = commands_for(found, scenario.tilt_series_id)
    assert (first["version"], second["version"]) == (1, 2)
    assert second["request_id"] == f"{scenario.tilt_series_id}:v2"
    assert second["reason"] == "late-tilt"
    assert isinstance(second["tilts"], list)
    assert len(second["tilts"]) == 5


def test_too_few_usable_tilts_is_reported_failed(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    scenario = build_scenario([TiltPlan("used"), TiltPlan("failed"), TiltPlan("motion")], series=14)
    aggregator_cluster.send(scenario.events)
    found = wait_for(
        aggregator_cluster,
        "processing.failed",
        lambda evs: any(v.get("stage") == "aggregate" for v in commands_for(evs, scenario.tilt_series_id)),
    )
    (failure,) = [v for v in commands_for(found, scenario.tilt_series_id) if v["stage"] == "aggregate"]
    assert failure["error_class"] == "TooFewUsableTiltsError"
    assert failure["request_id"] == f"{scenario.tilt_series_id}:v1"
    assert not commands_for(
        read_topic(aggregator_cluster, "tiltseries.reconstruction-requested"), scenario.tilt_series_id
    )


def test_undecodable_input_goes_to_the_dead_letter_topic_and_outputs_stay_co_partitioned(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    name = aggregator_cluster.catalogue.topic("movie.acquired").name
    producer = Producer({"bootstrap.servers": aggregator_cluster.kafka.bootstrap_servers})
    producer.produce(name, b"not avro at all", b"cm40000-1:Position_15")
    assert producer.flush(30) == 0
    dlq = aggregator_cluster.catalogue.dlq("agg-broker")
    deadline_events: list[ReadEvent] = []
    for _ in range(240):
        deadline_events = list(read_events(aggregator_cluster.kafka, [dlq], timeout=30))
        if deadline_events:
            break
        import time

        time.sleep(0.5)
    assert [e.raw for e in deadline_events] == [b"not avro at all"]
    assert deadline_events[0].headers["__connect.errors.topic"] == name
    # every status went to the partition its series' inputs are on (murmur2 on both sides)
    inputs = {e.key: e.partition for e in read_topic(aggregator_cluster, "movie.acquired")}
    statuses = read_topic(aggregator_cluster, "tiltseries.status")
    assert statuses
    assert all(inputs[e.key] == e.partition for e in statuses if e.key in inputs)
    assert len({e.partition for e in statuses}) > 1


def test_reinjected_for_another_group_is_skipped_and_from_its_own_dead_letters_is_acted_on(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    """Two late tilts: one reinjected from another group's dead-letter topic, one from the aggregator's."""
    first = build_scenario([TiltPlan("used")] * 4, series=17)
    aggregator_cluster.send(first.events)
    wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: bool(commands_for(evs, first.tilt_series_id)),
    )
    full = build_scenario([TiltPlan("used")] * 6, series=17)
    late = [e for e in full.events if e not in first.events and e[0] != "TiltSeriesAcquisitionEnded"]
    catalogue = aggregator_cluster.catalogue
    for tilt, group in (("/tilt4/", "some-other-group"), ("/tilt5/", "agg-broker")):
        reinjected = [(HEADER_REINJECTED_FROM, f"{catalogue.dlq(group).name}/0/5".encode())]
        sends = [
            aggregator_cluster.producer.send(record, value, headers=reinjected)
            for record, value in late
            if tilt in value["movie_id"]
        ]
        assert len(sends) == 3  # acquired, motion-corrected, CTF
        aggregator_cluster.producer.wait(sends)
    found = wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: len(commands_for(evs, first.tilt_series_id)) >= 2,
    )
    v1, v2 = commands_for(found, first.tilt_series_id)
    assert (v2["version"], v2["reason"]) == (2, "late-tilt")
    assert isinstance(v1["tilts"], list)
    assert isinstance(v2["tilts"], list)
    own = f"{first.tilt_series_id}/tilt5/take1"
    assert {t["movie_id"] for t in v2["tilts"]} == {t["movie_id"] for t in v1["tilts"]} | {own}


def test_undecodable_message_is_dead_lettered_and_the_series_behind_it_is_decided(
    aggregator_cluster: Cluster, aggregator: AggregatorProcess
) -> None:
    scenario = build_scenario([TiltPlan("used")] * 4, series=19)
    name = aggregator_cluster.catalogue.topic("movie.acquired").name
    key = scenario.tilt_series_id.encode()
    # a movie that decodes but cannot be true (the serde encodes it; the producer's checks would refuse it)
    record, value = scenario.events[0]
    impossible = {**value, "movie_id": "impossible", "dose_e_per_angstrom2": math.nan}
    invalid = AvroSerde().encode(record, impossible)
    producer = create_producer(aggregator_cluster.kafka)  # the series' own partitioner: same partition
    producer.produce(name, b"\x00garbage", key)
    producer.produce(name, invalid, key)
    assert producer.flush(30) == 0
    aggregator_cluster.send(scenario.events)
    found = wait_for(
        aggregator_cluster,
        "tiltseries.reconstruction-requested",
        lambda evs: bool(commands_for(evs, scenario.tilt_series_id)),
    )
    (command,) = commands_for(found, scenario.tilt_series_id)
    assert command["reason"] == "complete"
    tilts = command["tilts"]
    assert isinstance(tilts, list)
    assert {t["movie_id"]: t["exclusion_reason"] for t in tilts} == scenario.expected  # not "impossible"

    # both came first on the series' partition, so their dead letters were acknowledged by now
    def bad(event: ReadEvent) -> bool:  # the reader shows the invalid one decoded (it does not check)
        return event.raw == b"\x00garbage" or (event.value or {}).get("movie_id") == "impossible"

    sources = [e for e in read_topic(aggregator_cluster, "movie.acquired") if bad(e)]
    dlq = aggregator_cluster.catalogue.dlq("agg-broker")
    letters = [e for e in read_events(aggregator_cluster.kafka, [dlq], timeout=30) if e.key == key.decode()]

    def seen(events: list[ReadEvent]) -> list[tuple[bytes | None, object]]:
        return [(e.raw, (e.value or {}).get("movie_id")) for e in events]  # the NaN equals nothing

    assert seen(letters) == seen(sources) == [(b"\x00garbage", None), (None, "impossible")]
    for source, letter in zip(sources, letters, strict=True):
        assert letter.partition == source.partition
        assert letter.headers["__connect.errors.topic"] == name
        assert letter.headers["__connect.errors.partition"] == str(source.partition)
        assert letter.headers["__connect.errors.offset"] == str(source.offset)
        assert letter.headers["tiltstream.errors.group"] == "agg-broker"
    classes = [letter.headers["__connect.errors.exception.class.name"] for letter in letters]
    assert classes[0].endswith(".UndecodableEventError")
    assert classes[1].endswith(".InvalidEventError")
