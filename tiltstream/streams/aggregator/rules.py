"""The aggregator's rules: when a series is ready and which tilts a reconstruction leaves out."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rules"]


@dataclass(frozen=True)
class Rules:
    """Limits and timings of the decision, all configurable (see ``AggregatorSettings``).

    Attributes
    ----------
    grace_seconds
        How long after acquisition ended (or after a late tilt arrived) unsettled tilts are waited
        for; then the command is emitted with them marked missing.
    max_ctf_fit_resolution_angstroms
        Tilts whose CTF fit resolution is worse (larger) are excluded as ``ctf-fit``.
    max_total_motion_angstroms
        Tilts whose whole drift trajectory is longer are excluded as ``motion``.
    dark_dose_fraction
        A tilt whose measured dose is below this fraction of the series' median known dose is ``dark``
        (SerialEM's ExposureDose is measured from the image counts: a blocked beam reads near zero). A
        dose of 0 is unknown (the source's convention), never dark by this rule.
    dark_brightness_fraction, dark_neighbours
        A tilt whose brightness (the micrograph's mean counts per pixel per second, times 1/cos of the
        tilt for the longer path through the specimen) is below this fraction of the median brightness
        of its ``dark_neighbours`` nearest tilts by angle is ``dark``, with or without a known dose
        (AreTomo's ``-DarkTol`` is 0.7; Warp's ``min_intensity`` scales by cos the same way). Nearest by
        angle, not the whole series, since the 1/cos model of a thick specimen's transmission is only
        close over a few degrees.
    min_usable_tilts
        Fewer usable tilts than this and the series is reported failed, not reconstructed.
    angle_tolerance_degrees
        Movies whose nominal angles are this close are retakes of one tilt (the newest wins).
    wait_for_ctf
        A corrected tilt counts as settled only with its CTF estimate (or CTF failure), so that the
        CTF exclusion rule does not depend on which event came first.
    inactivity_seconds
        An acquisition whose end is never announced (no ``TiltSeriesAcquisitionEnded``) is taken as
        ended this long after its last new tilt was seen; then the grace period applies as usual.
    binning, thickness_angstroms
        Passed on in the command.
    """

    grace_seconds: float = 300.0
    max_ctf_fit_resolution_angstroms: float = 20.0
    max_total_motion_angstroms: float = 50.0
    dark_dose_fraction: float = 0.2
    dark_brightness_fraction: float = 0.7
    dark_neighbours: int = 4
    min_usable_tilts: int = 10
    angle_tolerance_degrees: float = 0.5
    wait_for_ctf: bool = True
    binning: int = 4
    thickness_angstroms: float = 3000.0
    inactivity_seconds: float = 1800.0

    @property
    def grace_ms(self) -> int:
        """The grace period in milliseconds."""
        return round(self.grace_seconds * 1000)

    @property
    def inactivity_ms(self) -> int:
        """The inactivity period in milliseconds."""
        return round(self.inactivity_seconds * 1000)
