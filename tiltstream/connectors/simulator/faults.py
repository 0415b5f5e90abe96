"""Faults a real session shows, injected on demand: ``KIND:POSITION[:TILT]``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Fault", "FaultKind", "parse_fault"]


class FaultKind(StrEnum):
    """What goes wrong.

    * ``retake``: the tilt is taken twice at the same angle (the newer movie counts).
    * ``dark``: almost no electrons reach the detector (a grid bar or a closed valve).
    * ``truncated``: the movie file stops at 60 % of its bytes.
    * ``corrupt``: the movie's header is garbage.
    * ``missing``: the mdoc names a movie that never arrives.
    * ``cancel``: the series stops after ``TILT`` tilts (the other positions carry on).
    * ``mdoc-order``: the series' mdoc lists each section's fields in an unusual order.
    """

    RETAKE = "retake"
    DARK = "dark"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    MISSING = "missing"
    CANCEL = "cancel"
    MDOC_ORDER = "mdoc-order"


@dataclass(frozen=True)
class Fault:
    """A fault at tilt ``tilt`` (0-based index in the scheme) of position ``position`` (1-based)."""

    kind: FaultKind
    position: int
    tilt: int = 0

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.position}:{self.tilt}"


def parse_fault(spec: str) -> Fault:
    """Parse ``KIND:POSITION[:TILT]``, e.g. ``retake:1:4``, ``cancel:2:12`` or ``mdoc-order:1``.

    Raises
    ------
    ValueError
        For an unknown kind or a malformed number.
    """
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"fault {spec!r}: expected KIND:POSITION[:TILT]")
    try:
        kind = FaultKind(parts[0])
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"fault {spec!r}: unknown kind {parts[0]!r} (one of {kinds})") from None
    try:
        position = int(parts[1])
        tilt = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        raise ValueError(f"fault {spec!r}: POSITION and TILT are integers") from None
    if position < 1 or tilt < 0:
        raise ValueError(f"fault {spec!r}: POSITION counts from 1, TILT from 0")
    if kind is not FaultKind.MDOC_ORDER and len(parts) != 3:
        raise ValueError(f"fault {spec!r}: {kind.value} needs a TILT")
    return Fault(kind, position, tilt)
