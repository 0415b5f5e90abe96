"""Dark tilts: by the dose the microscope measured, or by the counts the detector saw (pure).

A tilt is dark when too few electrons reached the detector (a grid bar, a closed valve, a blank
beam). Two rules, either suffices:

* **dose**: its dose is below ``rules.dark_dose_fraction`` of the series' median known dose. A dose
  of 0 is the source's "unknown" (SerialEM's uncalibrated ``ExposureDose = 0``): never dark by dose,
  and not part of the median.
* **image**: its *brightness* (the motion-corrected sum's mean counts per pixel per second, divided
  by cos of the tilt: the path through a slab grows as 1/cos) is below
  ``rules.dark_brightness_fraction`` of the median brightness of its ``rules.dark_neighbours``
  nearest tilts by angle (those with a brightness; of two as near, the lower angle first). It needs
  no dose.

Both the batch selection (:func:`~tiltstream.streams.aggregator.tilts.select_tilts`) and the
incremental one (:class:`~tiltstream.streams.aggregator.selection.TiltSelection`) decide through
:func:`dose_dark` and :func:`image_dark` on rows built by :func:`brightness_row`, so the two agree.
"""

from __future__ import annotations

import math
import statistics

from tiltstream.streams.aggregator.rules import Rules
from tiltstream.streams.aggregator.state import Acquired, Corrected, SeriesState

__all__ = [
    "BrightRow",
    "brightness_row",
    "dark_flags",
    "dose_dark",
    "dose_known",
    "image_dark",
    "neighbour_brightness",
]

#: (tilt angle in degrees, movie id, brightness): one tilt with a brightness, kept sorted.
BrightRow = tuple[float, str, float]


def dose_known(movie: Acquired) -> bool:
    """Whether ``movie``'s dose is known (the source writes 0 for unknown)."""
    return movie.dose_e_per_angstrom2 > 0


def dose_dark(movie: Acquired, limit_e_per_angstrom2: float) -> bool:
    """Whether ``movie``'s known dose is below ``limit_e_per_angstrom2`` (fraction x median known dose)."""
    return dose_known(movie) and movie.dose_e_per_angstrom2 < limit_e_per_angstrom2


def brightness_row(movie: Acquired, corrected: Corrected | None) -> BrightRow | None:
    """``movie``'s row: its counts per pixel per second over cos of its tilt; None when not measured."""
    counts = corrected.mean_counts_per_pixel_per_second if corrected is not None else None
    cosine = math.cos(math.radians(movie.tilt_angle_degrees))
    if counts is None or cosine <= 0:
        return None
    return (movie.tilt_angle_degrees, movie.movie_id, counts / cosine)


def neighbour_brightness(rows: list[BrightRow], at: int, count: int) -> list[float]:
    """The brightness of up to ``count`` rows nearest ``rows[at]`` by angle, itself left out.

    ``rows`` is sorted by (angle, movie id). Of two rows as near, the one at the lower angle comes
    first. They all lie within ``count`` positions of ``at``, which keeps an update local.
    """
    angle = rows[at][0]
    left, right = at - 1, at + 1
    found: list[float] = []
    while len(found) < count and (left >= 0 or right < len(rows)):
        if right >= len(rows) or (left >= 0 and angle - rows[left][0] <= rows[right][0] - angle):
            found.append(rows[left][2])
            left -= 1
        else:
            found.append(rows[right][2])
            right += 1
    return found


def image_dark(rows: list[BrightRow], at: int, rules: Rules) -> bool:
    """Whether ``rows[at]`` is below ``rules.dark_brightness_fraction`` of its neighbours' median."""
    neighbours = neighbour_brightness(rows, at, rules.dark_neighbours)
    return bool(neighbours) and rows[at][2] < rules.dark_brightness_fraction * statistics.median(neighbours)


def dark_flags(state: SeriesState, winners: list[Acquired], rules: Rules) -> dict[str, bool]:
    """Whether each of ``winners`` (the movie standing for each angle) is dark, by dose or by image."""
    doses = [movie.dose_e_per_angstrom2 for movie in winners if dose_known(movie)]
    dose_limit = rules.dark_dose_fraction * statistics.median(doses) if doses else 0.0
    measured = (brightness_row(movie, state.corrected.get(movie.movie_id)) for movie in winners)
    rows = sorted(row for row in measured if row is not None)
    position = {row[1]: at for at, row in enumerate(rows)}
    flags = {}
    for movie in winners:
        at = position.get(movie.movie_id)
        flags[movie.movie_id] = dose_dark(movie, dose_limit) or (
            at is not None and image_dark(rows, at, rules)
        )
    return flags
