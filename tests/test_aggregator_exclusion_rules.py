"""The exclusion reasons the aggregator states, by the names issue 21 gives them (``motion``, ``ctf-fit``)."""

from __future__ import annotations

from aggregator_scenarios import RULES, TiltPlan, build_scenario, typed

from tiltstream.streams.aggregator import SeriesState, apply_event
from tiltstream.streams.aggregator.tilts import EXCLUSION_REASONS, select_tilts

NOW = 1_800_000_000_000


def test_reasons_are_the_issues_names() -> None:
    assert {"motion", "ctf-fit"} <= set(EXCLUSION_REASONS)
    assert "ctf-resolution" not in EXCLUSION_REASONS


def test_a_long_trajectory_and_a_poor_fit_are_excluded_with_their_reasons() -> None:
    plans = [TiltPlan("used", False, "used")] * 3 + [
        TiltPlan("motion", False, "used"),
        TiltPlan("ctf-fit", False, "used"),
    ]
    scenario = build_scenario(plans)
    state = SeriesState(scenario.tilt_series_id)
    for record, value in scenario.events:
        state = apply_event(state, typed(record, value), NOW)
    chosen = select_tilts(state, RULES)
    assert [(c.excluded, c.reason) for c in chosen] == [(False, None)] * 3 + [
        (True, "motion"),
        (True, "ctf-fit"),
    ]
