"""Tilt schemes: the nominal angles of a tilt series in acquisition order."""

from __future__ import annotations

from typing import Literal

__all__ = ["tilt_scheme"]


def tilt_scheme(
    kind: Literal["dose-symmetric", "bidirectional"] = "dose-symmetric",
    *,
    max_tilt_degrees: float = 60.0,
    step_degrees: float = 3.0,
    group: int = 2,
    start_degrees: float = 0.0,
) -> list[float]:
    """Nominal tilt angles in acquisition order.

    Parameters
    ----------
    kind
        ``dose-symmetric`` (Hagen et al. 2017: 0°, then groups of ``group`` tilts alternating between the
        positive and negative branch) or ``bidirectional`` (``start_degrees`` to +max, then back from
        ``start_degrees - step`` to -max).
    max_tilt_degrees, step_degrees
        The range ±max is sampled every ``step``; ±60° by 3° gives 41 tilts.
    group
        Tilts per group of the dose-symmetric scheme.
    start_degrees
        First angle of the bidirectional scheme.

    Returns
    -------
    list[float]
        Angles in degrees, rounded to 1/100°.
    """
    steps = round(max_tilt_degrees / step_degrees)
    if kind == "dose-symmetric":
        plus = [i * step_degrees for i in range(1, steps + 1)]
        order = [0.0]
        for start in range(0, steps, group):
            order += plus[start : start + group]
            order += [-a for a in plus[start : start + group]]
    elif kind == "bidirectional":
        grid = [i * step_degrees for i in range(-steps, steps + 1)]
        first = [a for a in grid if a >= start_degrees - 1e-9]
        second = [a for a in reversed(grid) if a < start_degrees - 1e-9]
        order = first + second
    else:
        raise ValueError(f"unknown tilt scheme {kind!r}")
    return [round(a, 2) + 0.0 for a in order]
