"""The aggregator's pure decision logic, exhaustively with hypothesis (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from aggregator_scenarios import RULES, Scenario, TiltPlan, build_scenario, scenarios, typed
from hypothesis import given, settings
from hypothesis import strategies as st

from tiltstream.streams.aggregator import Command, SeriesState, apply_event, decide, next_deadline_ms
from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import state_from_json, state_to_json
from tiltstream.streams.serde import AvroSerde

NOW = 1_800_000_000_000
SERDE = AvroSerde()


def run(
    scenario: Scenario,
    events: list[tuple[str, dict[str, Any]]] | None = None,
    now_ms: int = NOW,
    rules: Rules = RULES,
    state: SeriesState | None = None,
) -> tuple[SeriesState, list[Command]]:
    """Fold and decide after every event, as the application does; all commands emitted."""
    state = state or SeriesState(scenario.tilt_series_id)
    commands: list[Command] = []
    for record, value in scenario.events if events is None else events:
        decision = decide(apply_event(state, typed(record, value), now_ms), now_ms, rules)
        state = decision.state
        commands += decision.commands
    return state, commands


def tilts_by_movie(command: Command) -> dict[str, str | None]:
    return {t["movie_id"]: t["exclusion_reason"] for t in command.value["tilts"]}


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(settled_only=True), data=st.data())
def test_order_and_duplicates_do_not_change_the_decision(scenario: Scenario, data: st.DataObject) -> None:
    state, commands = run(scenario)
    shuffled = data.draw(st.permutations(scenario.events))
    duplicates = data.draw(st.lists(st.sampled_from(scenario.events), max_size=len(scenario.events)))
    mixed = list(shuffled)
    for i, event in enumerate(duplicates):
        mixed.insert(data.draw(st.integers(0, len(mixed)), label=f"position {i}"), event)
    other_state, other_commands = run(scenario, mixed)
    assert len(commands) == 1
    assert [c.value for c in other_commands] == [c.value for c in commands]
    assert other_state == state


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(settled_only=True))
def test_complete_series_gets_one_command_with_known_exclusions(scenario: Scenario) -> None:
    state, commands = run(scenario)
    (command,) = commands
    if scenario.usable < RULES.min_usable_tilts:
        assert command.record == "ProcessingFailed"
        assert command.value["error_class"] == "TooFewUsableTiltsError"
        assert state.latest is not None
        assert state.latest.kind == "failed"
        return
    assert command.record == "ReconstructionRequested"
    assert command.value["reason"] == "complete"
    assert command.value["request_id"] == f"{scenario.tilt_series_id}:v1"
    assert tilts_by_movie(command) == scenario.expected  # retakes: only the newest take is listed
    assert not scenario.superseded & tilts_by_movie(command).keys()
    assert command.value["missing_tilt_count"] == 0
    for tilt in command.value["tilts"]:
        assert tilt["excluded"] == (tilt["exclusion_reason"] is not None)
    SERDE.encode("ReconstructionRequested", command.value)  # matches the schema


@settings(max_examples=100, deadline=None)
@given(scenario=scenarios())
def test_grace_period_emits_what_is_there_with_the_rest_missing(scenario: Scenario) -> None:
    state, commands = run(scenario)
    unsettled = any(reason == "missing" for reason in scenario.expected.values())
    assert len(commands) == (0 if unsettled else 1)
    if not unsettled:
        return
    deadline = next_deadline_ms(state, RULES)
    assert deadline == NOW + RULES.grace_ms
    assert decide(state, deadline - 1, RULES).commands == ()
    late = decide(state, deadline, RULES)
    (command,) = late.commands
    if command.record == "ReconstructionRequested":
        assert command.value["reason"] == "grace-period-expired"
        assert tilts_by_movie(command) == scenario.expected
        assert command.value["missing_tilt_count"] == sum(r == "missing" for r in scenario.expected.values())
    assert next_deadline_ms(late.state, RULES) is None
    assert decide(late.state, deadline + 10_000_000, RULES).commands == ()


@settings(max_examples=100, deadline=None)
@given(scenario=scenarios(settled_only=True))
def test_every_event_again_changes_nothing(scenario: Scenario) -> None:
    state, _ = run(scenario)
    for record, value in scenario.events:
        again = decide(apply_event(state, typed(record, value), NOW + 5), NOW + 5, RULES)
        assert again.state == state
        assert again.commands == ()
        assert again.status is None


@settings(max_examples=60, deadline=None)
@given(scenario=scenarios(settled_only=True), later_ms=st.integers(0, 10**9))
def test_command_is_deterministic_across_replays(scenario: Scenario, later_ms: int) -> None:
    _, first = run(scenario)
    _, again = run(scenario, now_ms=NOW + later_ms)
    assert [(c.record, c.value["metadata"]["event_id"]) for c in first] == [
        (c.record, c.value["metadata"]["event_id"]) for c in again
    ]
    if first[0].record == "ReconstructionRequested":
        assert first[0].value["request_id"] == again[0].value["request_id"]
        assert first[0].value["tilts"] == again[0].value["tilts"]


@settings(max_examples=60, deadline=None)
@given(scenario=scenarios(settled_only=True))
def test_state_survives_its_table_encoding(scenario: Scenario) -> None:
    state, _ = run(scenario)
    assert state_from_json(state_to_json(state)) == state


def test_late_tilt_produces_version_two() -> None:
    plans = [TiltPlan("used") for _ in range(5)]
    scenario = build_scenario(plans)
    state, commands = run(scenario)
    assert [c.value["version"] for c in commands] == [1]
    late = build_scenario([*plans, TiltPlan("used")])
    extra = [e for e in late.events if e not in scenario.events and e[0] != "TiltSeriesAcquisitionEnded"]
    acquired, rest = extra[0], extra[1:]
    state, waiting = run(scenario, [acquired], state=state)
    assert waiting == []
    assert next_deadline_ms(state, RULES) == NOW + RULES.grace_ms
    state, commands = run(scenario, rest, state=state)
    (command,) = commands
    assert command.value["version"] == 2
    assert command.value["reason"] == "late-tilt"
    assert command.value["request_id"] == f"{scenario.tilt_series_id}:v2"
    assert len(command.value["tilts"]) == 6
    state, commands = run(scenario, late.events, state=state)
    assert commands == []


def test_late_tilt_that_never_settles_waits_one_grace_period() -> None:
    scenario = build_scenario([TiltPlan("used") for _ in range(4)])
    state, _ = run(scenario)
    late = build_scenario([*(TiltPlan("used") for _ in range(4)), TiltPlan("unprocessed")])
    state, commands = run(scenario, [late.events[-2]], now_ms=NOW + 1000, state=state)
    assert commands == []
    assert decide(state, NOW + 1000 + RULES.grace_ms - 1, RULES).commands == ()
    (command,) = decide(state, NOW + 1000 + RULES.grace_ms, RULES).commands
    assert (command.value["version"], command.value["missing_tilt_count"]) == (2, 1)


def test_retake_after_command_replaces_the_tilt() -> None:
    scenario = build_scenario([TiltPlan("used") for _ in range(4)])
    state, _ = run(scenario)
    retaken = build_scenario([*(TiltPlan("used") for _ in range(3)), TiltPlan("used", retake=True)])
    # take 0 of tilt 3 is new to the state, take 1 is the movie already used: the newest still wins
    old_take = [e for e in retaken.events if "tilt3/take0" in e[1].get("movie_id", "")]
    state, commands = run(scenario, old_take, state=state)
    assert commands == []


def test_failed_reconstruction_and_results_update_the_status() -> None:
    scenario = build_scenario([TiltPlan("used") for _ in range(4)])
    state, _ = run(scenario)
    from tiltstream.streams.samples import sample_event

    done = sample_event("TomogramReconstructed", 1)
    decision = decide(apply_event(state, typed("TomogramReconstructed", done), NOW), NOW, RULES)
    assert decision.status is not None
    assert decision.status["state"] == "reconstructed"
    assert decision.status["tomogram"] == done["tomogram"]
    denoised = sample_event("TomogramDenoised", 1)
    decision = decide(apply_event(decision.state, typed("TomogramDenoised", denoised), NOW), NOW, RULES)
    assert decision.status is not None
    assert decision.status["state"] == "denoised"
    SERDE.encode("TiltSeriesStatus", decision.status)


@pytest.mark.parametrize("min_usable", [1, 4, 5])
def test_min_usable_tilts_boundary(min_usable: int) -> None:
    scenario = build_scenario([TiltPlan("used")] * 4 + [TiltPlan("motion")])
    _, (command,) = run(scenario, rules=Rules(grace_seconds=60, min_usable_tilts=min_usable))
    assert command.record == ("ReconstructionRequested" if min_usable <= 4 else "ProcessingFailed")


def test_end_before_movies_waits_for_every_announced_movie() -> None:
    scenario = build_scenario([TiltPlan("used") for _ in range(3)])
    end = scenario.events[-1]
    first_tilts = [e for e in scenario.events if "tilt2" not in e[1].get("movie_id", "")]
    _, commands = run(scenario, [end, *first_tilts[:-1]])
    assert commands == []
    _, commands = run(scenario, [end, *scenario.events[:-1]])
    assert len(commands) == 1


INACTIVE = Rules(grace_seconds=60.0, min_usable_tilts=3, inactivity_seconds=600.0)


@settings(max_examples=100, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_acquisition_that_never_ends_is_treated_as_ended_after_inactivity(
    scenario: Scenario, data: st.DataObject
) -> None:
    events = [e for e in scenario.events if e[0] != "TiltSeriesAcquisitionEnded"]
    state, commands = run(scenario, events, rules=INACTIVE)
    assert commands == []  # no end seen: waits, however complete it looks
    assert state.ended is None
    deadline = next_deadline_ms(state, INACTIVE)
    assert deadline == NOW + INACTIVE.inactivity_ms  # every tilt was first seen at NOW
    assert decide(state, deadline - 1, INACTIVE).commands == ()
    # a tilt seen again later (a redelivery) does not postpone it
    record, value = data.draw(st.sampled_from([e for e in events if e[0] == "MovieAcquired"]))
    assert apply_event(state, typed(record, value), deadline - 1) == state
    ended = decide(state, deadline, INACTIVE)
    assert ended.state.ended is not None
    assert ended.state.ended.reason == "inactivity"
    assert ended.state.ended.acquired_tilt_count == scenario.movie_count
    unsettled = any(reason == "missing" for reason in scenario.expected.values())
    if not unsettled:
        (command,) = ended.commands
        if command.record == "ReconstructionRequested":
            assert command.value["reason"] == "complete"
            assert tilts_by_movie(command) == scenario.expected
        return
    # then the usual grace period for the unprocessed tilts
    assert ended.commands == ()
    assert next_deadline_ms(ended.state, INACTIVE) == deadline + INACTIVE.grace_ms
    (command,) = decide(ended.state, deadline + INACTIVE.grace_ms, INACTIVE).commands
    if command.record == "ReconstructionRequested":
        assert command.value["reason"] == "grace-period-expired"
        assert tilts_by_movie(command) == scenario.expected


def test_a_new_tilt_restarts_the_inactivity_period() -> None:
    scenario = build_scenario([TiltPlan("used")] * 4, ended=False)
    first, last = scenario.events[:-4], scenario.events[-4:]  # the last tilt's events
    state, _ = run(scenario, first, rules=INACTIVE)
    later = NOW + 300_000
    state, _ = run(scenario, last, now_ms=later, rules=INACTIVE, state=state)
    assert next_deadline_ms(state, INACTIVE) == later + INACTIVE.inactivity_ms
    assert decide(state, NOW + INACTIVE.inactivity_ms, INACTIVE).commands == ()
    (command,) = decide(state, later + INACTIVE.inactivity_ms, INACTIVE).commands
    assert command.value["request_id"].endswith(":v1")


def test_a_real_end_after_the_inactivity_end_changes_nothing_when_complete() -> None:
    scenario = build_scenario([TiltPlan("used")] * 4)
    events = [e for e in scenario.events if e[0] != "TiltSeriesAcquisitionEnded"]
    (end,) = [e for e in scenario.events if e[0] == "TiltSeriesAcquisitionEnded"]
    state, _ = run(scenario, events, rules=INACTIVE)
    decided = decide(state, NOW + INACTIVE.inactivity_ms, INACTIVE)
    assert len(decided.commands) == 1
    later = NOW + INACTIVE.inactivity_ms + 1000
    after = decide(apply_event(decided.state, typed(*end), later), later, INACTIVE)
    assert after.commands == ()
    assert after.state.ended is not None
    assert after.state.ended.reason != "inactivity"  # the real end replaces the assumed one
    assert after.state.latest == decided.state.latest


def test_command_names_each_tilts_frame_halves_where_motion_correction_made_them() -> None:
    scenario = build_scenario([TiltPlan("used") for _ in range(5)])
    events = []
    for record, value in scenario.events:
        if record == "MovieMotionCorrected":
            movie_id = value["movie_id"]
            halves = not movie_id.endswith(("tilt3/take1", "tilt4/take1"))  # two tilts without halves
            value = {
                **value,
                "micrograph_even": {"root": "processed", "path": f"{movie_id}_EVN.mrc"} if halves else None,
                "micrograph_odd": {"root": "processed", "path": f"{movie_id}_ODD.mrc"} if halves else None,
            }
        events.append((record, value))
    state, commands = run(scenario, events)
    (command,) = commands
    assert sum(t["micrograph_even"] is None for t in command.value["tilts"]) == 2
    for tilt in command.value["tilts"]:
        movie_id = tilt["movie_id"]
        if movie_id.endswith(("tilt3/take1", "tilt4/take1")):
            assert tilt["micrograph_even"] is None
            assert tilt["micrograph_odd"] is None
        else:
            assert tilt["micrograph_even"] == {"root": "processed", "path": f"{movie_id}_EVN.mrc"}
            assert tilt["micrograph_odd"] == {"root": "processed", "path": f"{movie_id}_ODD.mrc"}
    SERDE.encode("ReconstructionRequested", command.value)
    assert state_from_json(state_to_json(state)) == state  # the halves survive the table's encoding
