"""The table entry's encoding: versioned msgpack, the first (zlib JSON) encoding still read, bounded size."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace

import pytest
from aggregator_scenarios import RULES, TiltPlan, build_scenario, typed

from tiltstream.streams.aggregator import SeriesState, apply_event, decide
from tiltstream.streams.aggregator.entry import (
    ENTRY_VERSION,
    TableEntry,
    UnknownEntryVersionError,
    decode_entry,
    encode_entry,
)
from tiltstream.streams.aggregator.state import state_to_plain

NOW = 1_800_000_000_000
OUTBOX = (("cm.tiltseries.reconstruction-requested", b"\xc3\x01\x00\xff avro bytes"),)


def folded(tilts: int, *, retakes: bool = True, twice: bool = False) -> SeriesState:
    plans = [TiltPlan("used", retakes and tilt % 3 == 0, "ctf-fit") for tilt in range(tilts)]
    scenario = build_scenario(plans)
    events = scenario.events * (2 if twice else 1)
    state = SeriesState(scenario.tilt_series_id)
    for record, value in events:
        state = decide(apply_event(state, typed(record, value), NOW), NOW, RULES).state
    return state


def test_an_entry_comes_back_as_it_went_in_with_its_version_byte() -> None:
    entry = TableEntry(folded(12), 5, OUTBOX)
    data = encode_entry(entry)
    assert data[0] == ENTRY_VERSION
    assert decode_entry(data) == entry


def test_an_entry_of_the_first_encoding_is_still_read() -> None:
    entry = TableEntry(folded(12), 3, OUTBOX)
    payload = {
        "state": state_to_plain(entry.state),
        "partition": entry.partition,
        "outbox": [[topic, base64.b64encode(data).decode()] for topic, data in entry.outbox],
    }
    legacy = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)
    assert decode_entry(legacy) == entry


@pytest.mark.parametrize("data", [b"", b"\x07\x90", b"\xff"])
def test_an_entry_of_an_unknown_encoding_is_refused_by_its_version(data: bytes) -> None:
    with pytest.raises(UnknownEntryVersionError, match=r"empty|version"):
        decode_entry(data)


def test_the_entry_does_not_grow_with_redeliveries_or_decisions_only_with_tilts() -> None:
    once = encode_entry(TableEntry(folded(60), 0))
    twice = encode_entry(TableEntry(folded(60, twice=True), 0))
    assert len(twice) == len(once)  # every event delivered again: the same facts, the same entry
    counts = (30, 60, 120, 200)
    sizes = [len(encode_entry(TableEntry(folded(n), 0))) for n in counts]
    per_tilt = [(sizes[i + 1] - sizes[i]) / (counts[i + 1] - counts[i]) for i in range(len(counts) - 1)]
    assert max(per_tilt) <= 1.05 * min(per_tilt)  # linear in tilts: nothing kept per event or version


def test_a_newer_attempt_replaces_the_fact_it_supersedes() -> None:
    state = folded(20, retakes=False)
    retried = {key: replace(fit, attempt=2, event_id="retry") for key, fit in state.ctf.items()}
    expected = len(encode_entry(TableEntry(state.with_(ctf=retried), 0)))
    scenario = build_scenario([TiltPlan("used", False, "used")] * 20)
    for record, value in scenario.events:
        if record == "CtfEstimated":
            again = {**value, "metadata": {**value["metadata"], "attempt": 2, "event_id": "retry"}}
            state = apply_event(state, typed(record, again), NOW)
    assert len(state.ctf) == 20
    assert all(fit.attempt == 2 for fit in state.ctf.values())
    assert len(encode_entry(TableEntry(state, 0))) == expected  # replaced, not kept beside
