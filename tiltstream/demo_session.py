"""A live session end to end on one machine: broker, topics, every service, a simulated microscope.

Used by ``tiltstream demo`` and by the end-to-end test. Sizes are small (512² movies, 11 tilts) so a
two- or three-position session finishes in a few minutes on two CPU cores.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tiltstream.live_session import DEMO_SETTINGS, DemoOptions, LiveSession, SessionTimeoutError
from tiltstream.pipeline_view import SeriesSummary, summarise_session
from tiltstream.session_latency import SeriesLatency, session_latencies

if TYPE_CHECKING:
    from tiltstream.connectors.simulator.truth_comparison import SeriesAgreement

__all__ = ["DEMO_SETTINGS", "DemoOptions", "DemoResult", "run_demo_session"]


@dataclass(frozen=True)
class DemoResult:
    """What a session reached: every series' final status, the summary, the latency breakdown, and
    per series how many tilts' motion and CTF estimates came within tolerance of the simulator's truth."""

    statuses: dict[str, dict[str, Any]]
    summaries: list[SeriesSummary]
    latencies: list[SeriesLatency]
    agreements: list[SeriesAgreement]


def run_demo_session(
    options: DemoOptions,
    on_progress: Callable[[dict[str, dict[str, Any]], dict[str, tuple[int, int]]], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run a whole session; return every series' final status, the summary and where the time went.

    The broker runs in ``workdir/broker`` and stops at the end (its data stay for inspection). A session
    that does not finish by ``options.timeout_seconds`` returns what it reached. ``on_progress`` gets
    every series' status and :meth:`~tiltstream.live_session.LiveSession.stage_counts`.
    """
    from tiltstream.demo_truth import truth_agreements  # numpy: not for the CLI's start

    with LiveSession(options) as session:
        if on_ready:
            on_ready(session.kafka.bootstrap_servers)
        session.acquire()
        statuses: dict[str, dict[str, Any]] = {}
        while time.monotonic() < session.deadline:
            statuses = session.statuses()
            if on_progress:
                on_progress(statuses, session.stage_counts())
            if session.finished(statuses):
                break
            time.sleep(2.0)
        # past the deadline the caller sees what was reached, in the statuses and the summary
        with contextlib.suppress(SessionTimeoutError):
            session.wait_until("the ISPyB sink to catch up", session.sink_caught_up)
        kafka, catalogue, serde = session.kafka, session.catalogue, session.serde
        # a movie is complete when the microscope finished writing it, before any transfer
        roots = {"raw": session.detector or session.raw, "processed": session.processed}
        return DemoResult(
            statuses,
            summarise_session(kafka, catalogue, serde),
            session_latencies(kafka, catalogue, serde, roots),
            truth_agreements(
                kafka, catalogue, serde, {s: session.microscope_root / s for _, s in options.sessions}
            ),
        )
