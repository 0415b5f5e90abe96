"""Dark tilts seen in the image: a tilt far darker than its neighbours by angle (after 1/cos of the tilt)
is excluded as ``dark`` even when the dose is unknown (issue 14 item 2).

The pure rules on seeded series first, then a simulated session whose mdoc says ``ExposureDose = 0``:
its movies go through the source's own event builder and the motion-correction processor, and the
aggregator excludes exactly the simulator's dark tilts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from motioncorr_fixtures import cpu_settings
from source_fixtures import simulate_small

from tiltstream.connectors.source.events import SeriesContext, movie_acquired
from tiltstream.connectors.source.mdoc import read_mdoc
from tiltstream.connectors.source.movie_check import inspect_movie
from tiltstream.processors.motioncorr import MotionCorrectionProcessor
from tiltstream.processors.runtime import Job
from tiltstream.streams.aggregator import InputRecord, Rules, SeriesState, apply_event, decide
from tiltstream.streams.aggregator.darkness import neighbour_brightness
from tiltstream.streams.aggregator.selection import TiltSelection
from tiltstream.streams.aggregator.state import Acquired, Corrected
from tiltstream.streams.aggregator.tilts import select_tilts
from tiltstream.streams.events import MovieAcquired, MovieMotionCorrected, TiltSeriesAcquisitionEnded

NOW = 1_800_000_000_000
RULES = Rules(min_usable_tilts=3, wait_for_ctf=False)


def _series(tilts: Sequence[tuple[float, float, float | None]]) -> SeriesState:
    """A series of corrected tilts, each (angle in degrees, dose, counts per pixel per second)."""
    movies, corrected = {}, {}
    for order, (angle, dose, counts) in enumerate(tilts):
        movie_id = f"m{order:02d}"
        movies[movie_id] = Acquired(
            movie_id, f"acq-{movie_id}", order, angle, NOW + order, dose, 0.0, 85.0, 1.5, 300.0, 2.7, 0.07
        )
        corrected[movie_id] = Corrected(
            movie_id, f"mc-{movie_id}", 1, "processed", f"{movie_id}.mrc", 1.5, 5.0, counts
        )
    return SeriesState("cm1:Position_1", movies=movies, corrected=corrected)


def _reasons(state: SeriesState, rules: Rules = RULES) -> dict[float, str | None]:
    chosen = select_tilts(state, rules)
    selection = TiltSelection(rules)
    selection.update(state, None)
    assert selection.tilts() == chosen
    return {c.movie.tilt_angle_degrees: c.reason for c in chosen}


def _flat(angles: list[float], counts_at_0: float = 40.0) -> list[tuple[float, float, float]]:
    """Tilts whose counts fall as cos of the tilt (a thin specimen), dose unknown (0)."""
    return [(a, 0.0, counts_at_0 * math.cos(math.radians(a))) for a in angles]


ANGLES = [float(a) for a in range(-60, 61, 3)]


def test_a_tilt_at_60_degrees_with_half_the_counts_of_0_degrees_is_not_dark() -> None:
    assert _reasons(_series([(0.0, 0.0, 40.0), (60.0, 0.0, 20.0)])) == {0.0: None, 60.0: None}
    # the same half without the tilt is dark: the rule scales by 1/cos, it does not ignore counts
    assert _reasons(_series([(0.0, 0.0, 40.0), (1.5, 0.0, 20.0)]))[1.5] == "dark"
    assert _reasons(_series([(0.0, 0.0, 40.0), (60.0, 0.0, 12.0)]))[60.0] == "dark"  # 0.6 of 0 degrees


def test_dark_tilts_are_found_from_the_image_with_the_dose_unknown() -> None:
    rng = np.random.default_rng(3)
    tilts = [(a, 0.0, c * rng.uniform(0.9, 1.1)) for a, _, c in _flat(ANGLES)]  # ±10 % shot to shot
    dark = {-27.0, 42.0, 45.0}  # two neighbours dark together, too
    tilts = [(a, d, c * 0.05 if a in dark else c) for a, d, c in tilts]
    reasons = _reasons(_series(tilts))
    assert {a for a, why in reasons.items() if why == "dark"} == dark
    assert all(why is None for a, why in reasons.items() if a not in dark)


def test_a_thick_specimens_high_tilts_are_not_dark() -> None:
    """Transmission exp(-t / (λ cos θ)) at t = 1.4 λ falls faster than cos: by 60° a tilt has 0.45 of the
    0° brightness after 1/cos, yet 0.7 or more of its neighbours'; a series-wide median would drop it."""
    tilts = [(a, 0.0, 40.0 * math.exp(-1.4 / math.cos(math.radians(a)))) for a in ANGLES]
    end, middle = tilts[-1][2] / 0.5, tilts[len(tilts) // 2][2]
    assert end / middle < 0.5
    assert set(_reasons(_series(tilts)).values()) == {None}


def test_unknown_doses_are_not_dark_by_dose_and_known_low_doses_are() -> None:
    tilts: list[tuple[float, float, float | None]] = [(a, 3.0, c) for a, _, c in _flat(ANGLES[:10])]
    tilts[2] = (tilts[2][0], 0.0, tilts[2][2])  # dose unknown, image normal: used
    tilts[5] = (tilts[5][0], 0.1, tilts[5][2])  # dose measured far below the others: dark by dose
    tilts[7] = (tilts[7][0], 3.0, None)  # not measured in the image (an older event): by dose only
    reasons = _reasons(_series(tilts))
    assert [reasons[t[0]] for t in tilts] == [None] * 5 + ["dark"] + [None] * 4


def test_the_nearest_neighbours_by_angle_the_lower_angle_first_on_a_tie() -> None:
    rows = [(a, f"m{a:g}", a) for a in (-6.0, -3.0, 0.0, 3.0, 6.0, 12.0)]
    assert neighbour_brightness(rows, 2, 4) == [-3.0, 3.0, -6.0, 6.0]
    assert neighbour_brightness(rows, 5, 2) == [6.0, 3.0]
    assert neighbour_brightness(rows[:1], 0, 4) == []


def test_the_threshold_is_a_setting() -> None:
    tilts = _flat(ANGLES[:9])
    tilts[4] = (tilts[4][0], 0.0, tilts[4][2] * 0.6)
    assert _reasons(_series(tilts))[tilts[4][0]] == "dark"
    assert (
        _reasons(_series(tilts), Rules(min_usable_tilts=3, wait_for_ctf=False, dark_brightness_fraction=0.5))[
            tilts[4][0]
        ]
        is None
    )


def _corrected_events(
    session: Path, tmp_path: Path
) -> tuple[list[MovieAcquired], list[MovieMotionCorrected]]:
    """The source's MovieAcquired of Position_1 and the motion-correction processor's answer to each."""
    info = read_mdoc(session / "Position_1.mdoc")
    ctx = SeriesContext(
        microscope="m02", session_id="cm40000-1", tilt_series_id="cm40000-1:Position_1", instance=None
    )
    processor = MotionCorrectionProcessor(cpu_settings(tmp_path))
    acquired, corrected = [], []
    for tilt in info.tilts:
        path = session / "frames" / tilt.sub_frame_name
        value = movie_acquired(
            ctx,
            tilt=tilt,
            info=info,
            header=inspect_movie(path, tilt.num_sub_frames),
            movie={"root": "raw", "path": str(path.relative_to(tmp_path / "raw"))},
            mdoc=None,
            position_name="Position_1",
            voltage_kv=300.0,
            spherical_aberration_mm=2.7,
            amplitude_contrast=0.07,
        )
        job = Job(
            value=MovieAcquired.from_dict(value).to_dict(),
            topic="movie.acquired",
            partition=0,
            offset=0,
            attempt=1,
        )
        (output,) = processor.process(job, processor.load(job.value))
        acquired.append(MovieAcquired.from_dict(job.value))
        corrected.append(MovieMotionCorrected.from_dict(output.value))
    return acquired, corrected


def test_a_simulated_session_without_dose_has_its_dark_tilts_excluded_as_dark(tmp_path: Path) -> None:
    session = tmp_path / "raw" / "cm40000-1"
    (truth,) = simulate_small(
        session,
        "dark:1:2",
        "dark:1:15",
        exposure_dose_written=False,
        max_tilt_degrees=60.0,
        tilt_step_degrees=6.0,
    )  # 21 tilts to ±60°: the high tilts, darker through the longer path, stay used
    acquired, corrected = _corrected_events(session, tmp_path)
    assert {a.dose_source for a in acquired} == {"unknown"}
    assert {a.dose_e_per_angstrom2 for a in acquired} == {0.0}  # no dose hint at all
    assert all(c.mean_counts_per_pixel_per_second is not None for c in corrected)
    state = SeriesState("cm40000-1:Position_1")
    events: list[InputRecord] = [*acquired, *corrected]
    for event in events:
        state = apply_event(state, event, NOW)
    ended = TiltSeriesAcquisitionEnded.from_dict(
        {
            "metadata": acquired[-1].to_dict()["metadata"] | {"event_id": "end"},
            "ended_at": acquired[-1].acquired_at,
            "expected_tilt_count": len(acquired),
            "acquired_tilt_count": len(acquired),
            "reason": "completed",
        }
    )
    # 3 frames of 2 counts per pixel: the drift fit is noisy (motion is not what this test is about)
    rules = Rules(min_usable_tilts=3, wait_for_ctf=False, max_total_motion_angstroms=1e6)
    decision = decide(apply_event(state, ended, NOW), NOW, rules)
    (command,) = decision.commands
    assert command.record == "ReconstructionRequested"
    dark_angles = {t.nominal_tilt_angle_degrees for t in truth.tilts if t.dark}
    assert len(dark_angles) == 2
    marks = {t["tilt_angle_degrees"]: (t["excluded"], t["exclusion_reason"]) for t in command.value["tilts"]}
    assert marks == {
        t.nominal_tilt_angle_degrees: ((True, "dark") if t.dark else (False, None)) for t in truth.tilts
    }
