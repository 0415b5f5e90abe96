"""The latency split on hand-made timelines with known answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiltstream.session_latency import Step, latency_breakdown, percentile


def test_a_chain_of_steps_splits_into_known_parts() -> None:
    # file complete at 0; the watcher announces at 1 s; motion correction waits 2 s, works 3 s (out at 6 s);
    # the aggregator commands at 6.5 s; reconstruction waits 0.5 s, works 10 s (out at 17 s)
    steps = [Step("motioncorr", 1000, 6000, 3.0), Step("reconstruct", 6500, 17000, 10.0)]
    split = latency_breakdown(0, 17000, steps)
    assert split.total_seconds == pytest.approx(17.0)
    assert split.processing_seconds == pytest.approx(13.0)
    assert split.queued_seconds == pytest.approx(2.5)
    assert split.orchestration_seconds == pytest.approx(1.5)  # 1 s watcher + 0.5 s aggregator


def test_work_before_the_window_is_not_counted() -> None:
    # the critical tilt was acquired before the last tilt's file was complete (at 5 s)
    split = latency_breakdown(5000, 20000, [Step("motioncorr", 0, 8000, 4.0), Step("ctf", 8000, 12000, 1.0)])
    assert split.processing_seconds == pytest.approx(3.0 + 1.0)  # [5, 8] and [11, 12]
    assert split.queued_seconds == pytest.approx(3.0)  # [8, 11]
    assert split.orchestration_seconds == pytest.approx(8.0)  # [12, 20]


def test_a_duration_longer_than_the_wait_starts_at_the_input() -> None:
    split = latency_breakdown(0, 10000, [Step("denoise", 2000, 5000, 9.0)])
    assert split.processing_seconds == pytest.approx(3.0)
    assert split.queued_seconds == 0.0


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        latency_breakdown(10, 5, [])


steps = st.lists(
    st.tuples(
        st.floats(0, 1e5, allow_nan=False),
        st.floats(0, 1e5, allow_nan=False),
        st.floats(0, 200, allow_nan=False),
    ).map(lambda t: Step("s", min(t[0], t[1]), max(t[0], t[1]), t[2])),
    max_size=6,
)


@given(st.floats(0, 1e5, allow_nan=False), st.floats(0, 1e5, allow_nan=False), steps)
def test_the_parts_add_up_and_none_is_negative(a: float, b: float, chain: list[Step]) -> None:
    start, end = min(a, b), max(a, b)
    split = latency_breakdown(start, end, chain)
    parts = (split.queued_seconds, split.processing_seconds, split.orchestration_seconds)
    assert all(part >= -1e-9 for part in parts)
    assert sum(parts) == pytest.approx(split.total_seconds, abs=1e-6)


def test_percentile_interpolates_between_order_statistics() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0], 0.99) == pytest.approx(1.99)
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
