"""The incremental tilt selection against choosing the tilts afresh, after every event (hypothesis)."""

from __future__ import annotations

from typing import Any

from aggregator_scenarios import RULES, Scenario, TiltPlan, build_scenario, scenarios, typed
from hypothesis import given, settings
from hypothesis import strategies as st

from tiltstream.streams.aggregator import SeriesState, apply_event, decide
from tiltstream.streams.aggregator.outputs import content_signature
from tiltstream.streams.aggregator.selection import TiltCounts, TiltSelection
from tiltstream.streams.aggregator.tilts import select_tilts

NOW = 1_800_000_000_000


def _movie_id(value: dict[str, object]) -> str | None:
    movie_id = value.get("movie_id")
    return movie_id if isinstance(movie_id, str) else None


def _with_drawn_brightness(
    events: list[tuple[str, dict[str, Any]]], data: st.DataObject
) -> list[tuple[str, dict[str, Any]]]:
    """The events with each micrograph's brightness drawn (some unmeasured, some dark among bright), so
    that image darkness comes and goes as tilts, retakes and their micrographs arrive."""
    levels = st.sampled_from([None, 0.5, 1.0, 8.0, 10.0, 12.0, 13.0])
    return [
        (record, value | {"mean_counts_per_pixel_per_second": data.draw(levels)})
        if record == "MovieMotionCorrected"
        else (record, value)
        for record, value in events
    ]


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(max_tilts=14), data=st.data())
def test_after_every_event_the_selection_is_what_select_tilts_chooses(
    scenario: Scenario, data: st.DataObject
) -> None:
    events = list(data.draw(st.permutations(_with_drawn_brightness(scenario.events, data))))
    duplicates = data.draw(st.lists(st.sampled_from(scenario.events), max_size=len(events)))
    for i, event in enumerate(duplicates):
        events.insert(data.draw(st.integers(0, len(events)), label=f"position {i}"), event)
    selection = TiltSelection(RULES)
    state = SeriesState(scenario.tilt_series_id)
    for step, (record, value) in enumerate(events):
        state = apply_event(state, typed(record, value), NOW + step)
        fresh = decide(state, NOW + step, RULES)
        kept = decide(state, NOW + step, RULES, selection, _movie_id(value))
        expected = select_tilts(state, RULES)
        assert selection.tilts() == expected
        assert selection.counts() == TiltCounts.of(expected, list(state.movies.values()))
        assert selection.signature() == content_signature(expected)
        assert kept == fresh
        state = kept.state


def test_a_tick_or_an_unchanged_state_changes_nothing() -> None:
    scenario = build_scenario([TiltPlan("used", False, "used")] * 4 + [TiltPlan("dark", True, "used")])
    selection = TiltSelection(RULES)
    state = SeriesState(scenario.tilt_series_id)
    for record, value in scenario.events:
        state = decide(apply_event(state, typed(record, value), NOW), NOW, RULES, selection, None).state
    before = selection.tilts()
    decide(state, NOW + 1, RULES, selection, None)
    assert selection.tilts() == before == select_tilts(state, RULES)
