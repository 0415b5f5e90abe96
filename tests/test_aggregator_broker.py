"""The aggregator against the real broker: one ``tiltstream aggregate`` process serves every test here."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from aggregator_fixtures import AggregatorProcess, Cluster, read_topic, wait_for
from aggregator_scenarios import TiltPlan, build_scenario
from confluent_kafka import Producer

from tiltstream.streams.reader import ReadEvent

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
        TiltPlan("ctf-resolution", retake=True, retake_outcome="used"),
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
    assert {t["exclusion_reason"] for t in tilts} == {None, "failed", "ctf-resolution"}
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
    from tiltstream.streams.reader import read_events

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
