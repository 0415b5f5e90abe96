"""A scripted stand-in session that emits sample events of every record, paced, for the demo.

Until the simulator, the processors and the aggregator run in the demo, this shows the backbone
working end to end: N positions acquired tilt by tilt (PACE-style), each tilt corrected and
CTF-estimated, then per series the end of acquisition, the reconstruction command, the tomogram and
the denoised tomogram, with status updates. Every event is a real encoded event on its real topic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from tiltstream.streams.producer import EventProducer
from tiltstream.streams.samples import sample_event

__all__ = ["SampleSession", "sample_session_events"]


def _status(series: int, tilt: int, state: str, **changes: Any) -> dict[str, Any]:
    value = sample_event("TiltSeriesStatus", series, tilt)
    value.update(state=state, **changes)
    return value


def sample_session_events(positions: int = 3, tilts: int = 9) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(record, value)`` pairs in the order a small PACE session would produce them."""
    for tilt in range(tilts):
        for series in range(1, positions + 1):
            yield "MovieAcquired", sample_event("MovieAcquired", series, tilt)
        for series in range(1, positions + 1):
            yield "MovieMotionCorrected", sample_event("MovieMotionCorrected", series, tilt)
            yield "CtfEstimated", sample_event("CtfEstimated", series, tilt)
            yield (
                "TiltSeriesStatus",
                _status(
                    series,
                    tilt,
                    "acquiring",
                    acquired_tilts=tilt + 1,
                    corrected_tilts=tilt + 1,
                    ctf_tilts=tilt + 1,
                ),
            )
    for series in range(1, positions + 1):
        ended = sample_event("TiltSeriesAcquisitionEnded", series)
        ended.update(expected_tilt_count=tilts, acquired_tilt_count=tilts)
        yield "TiltSeriesAcquisitionEnded", ended
        request = sample_event("ReconstructionRequested", series)
        request["tilts"] = request["tilts"][:tilts]
        yield "ReconstructionRequested", request
        done = {
            "acquired_tilts": tilts,
            "corrected_tilts": tilts,
            "ctf_tilts": tilts,
            "expected_tilts": tilts,
        }
        yield "TiltSeriesStatus", _status(series, tilts - 1, "requested", latest_version=1, **done)
    done = {"acquired_tilts": tilts, "corrected_tilts": tilts, "ctf_tilts": tilts, "expected_tilts": tilts}
    for series in range(1, positions + 1):
        tomogram = sample_event("TomogramReconstructed", series)
        tomogram["tilt_alignments"] = tomogram["tilt_alignments"][:tilts]
        yield "TomogramReconstructed", tomogram
        yield "TomogramDenoised", sample_event("TomogramDenoised", series)
        yield (
            "TiltSeriesStatus",
            _status(series, tilts - 1, "denoised", latest_version=1, tomogram=tomogram["tomogram"]),
        )


class SampleSession(threading.Thread):
    """Produce :func:`sample_session_events` at ``rate`` events per second until done or stopped."""

    def __init__(
        self, producer: EventProducer, *, rate: float = 4.0, positions: int = 3, tilts: int = 9
    ) -> None:
        super().__init__(name="sample-session", daemon=True)
        self.producer = producer
        self.rate = rate
        self.positions = positions
        self.tilts = tilts
        self.sent = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        """Send the session's events, waiting ``1 / rate`` seconds between them."""
        for record, value in sample_session_events(self.positions, self.tilts):
            if self.stopping.wait(1.0 / self.rate):
                break
            self.producer.send(record, value)
            self.sent += 1
        self.producer.flush(30)

    def stop(self) -> None:
        """Ask the thread to stop after the current event."""
        self.stopping.set()
