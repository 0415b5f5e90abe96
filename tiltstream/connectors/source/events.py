"""The values of the events the source connector emits, with deterministic ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tiltstream.connectors.source.mdoc import MdocInfo, MdocTilt
from tiltstream.connectors.source.movie_check import MovieHeader
from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.streams.metadata import event_id, make_metadata
from tiltstream.streams.validation import escape_nul

__all__ = [
    "CARRIED_PARAMETERS",
    "SERVICE",
    "SeriesContext",
    "acquisition_ended",
    "carried_parameters",
    "movie_acquired",
    "movie_id",
    "processing_failed",
]

#: Session parameters every ``MovieAcquired`` carries as they are set (``None``: the motion corrector's
#: own setting), so that a reprocessed movie can take the session's newest values.
CARRIED_PARAMETERS = (
    "gain_rotation_quarter_turns",
    "gain_flip",
    "eer_group_frames",
    "eer_dose_per_output_frame_e_per_angstrom2",
    "eer_sampling",
    "frame_halves",
)


def carried_parameters(parameters: SessionParameters) -> dict[str, Any]:
    """The :data:`CARRIED_PARAMETERS` of ``parameters``, as ``MovieAcquired`` fields."""
    return {name: getattr(parameters, name) for name in CARRIED_PARAMETERS}


#: The producing service's name in every event's metadata.
SERVICE = "source"


class SeriesContext:
    """Who a series belongs to: ids shared by all its events."""

    def __init__(
        self, *, microscope: str, session_id: str, tilt_series_id: str, instance: str | None
    ) -> None:
        self.microscope = microscope
        self.session_id = session_id
        self.tilt_series_id = tilt_series_id
        self.instance = instance

    def metadata(self, record: str, key: tuple[object, ...], occurred_at: datetime) -> dict[str, Any]:
        """Event metadata; the id depends only on the record, the series and ``key``."""
        return make_metadata(
            record,
            service=SERVICE,
            microscope=self.microscope,
            session_id=self.session_id,
            tilt_series_id=self.tilt_series_id,
            key=key,
            occurred_at=occurred_at,
            instance=self.instance,
        )


def movie_id(tilt_series_id: str, movie_name: str) -> str:
    """Deterministic id of a movie file: a retake (a new file) has a new id."""
    return event_id("Movie", tilt_series_id, movie_name)


def movie_acquired(
    ctx: SeriesContext,
    *,
    tilt: MdocTilt,
    info: MdocInfo,
    header: MovieHeader,
    movie: dict[str, str],
    mdoc: dict[str, str] | None,
    position_name: str,
    gain_reference: dict[str, str] | None = None,
    defect_file: dict[str, str] | None = None,
    parameters: SessionParameters | None = None,
    voltage_kv: float,
    spherical_aberration_mm: float,
    amplitude_contrast: float,
) -> dict[str, Any]:
    """A ``MovieAcquired`` value; ``occurred_at`` is the tilt's mdoc time, so a re-emission is identical.

    ``parameters`` are the session's (the version ``info`` was read with): their detector values and
    ``frame_halves`` (the even/odd frame sums) go to the motion corrector, ``None`` where unset (the
    service's setting applies).
    """
    detector = parameters or SessionParameters()
    mid = movie_id(ctx.tilt_series_id, tilt.sub_frame_name)
    shift = tilt.image_shift_micrometres
    pixel = tilt.pixel_size_angstroms or info.pixel_size_angstroms
    if pixel is None:
        raise ValueError("no PixelSpacing")  # checked by the caller before
    return {
        "metadata": ctx.metadata("MovieAcquired", (mid,), tilt.acquired_at),
        "movie_id": mid,
        "movie": movie,
        "movie_format": header.movie_format,
        "mdoc": mdoc,
        "gain_reference": gain_reference,
        "acquisition_order": tilt.z_value,
        "tilt_angle_degrees": tilt.tilt_angle_degrees,
        "tilt_axis_angle_degrees": info.tilt_axis_angle_degrees or 0.0,
        "acquired_at": tilt.acquired_at,
        "pixel_size_angstroms": pixel,
        "voltage_kv": voltage_kv,
        "spherical_aberration_mm": spherical_aberration_mm,
        "amplitude_contrast": amplitude_contrast,
        # unknown dose: 0 with dose_source "unknown" (the field is not nullable in the frozen schema)
        "dose_e_per_angstrom2": tilt.dose_e_per_angstrom2 if tilt.dose_e_per_angstrom2 is not None else 0.0,
        "prior_dose_e_per_angstrom2": tilt.prior_dose_e_per_angstrom2,
        "exposure_time_seconds": tilt.exposure_time_seconds or 0.0,
        "frame_count": header.frame_count,
        "image_width_pixels": header.width_pixels,
        "image_height_pixels": header.height_pixels,
        "target_defocus_micrometres": tilt.target_defocus_micrometres,
        "image_shift_x_micrometres": shift[0] if shift else None,
        "image_shift_y_micrometres": shift[1] if shift else None,
        "position_name": position_name,
        "dose_source": tilt.dose_source,
        "mdoc_writer": info.writer,
        "tilt_axis_source": info.tilt_axis_source,
        "session_parameters_version": info.parameters_version,
        "defect_file": defect_file,
        **carried_parameters(detector),
    }


def acquisition_ended(
    ctx: SeriesContext,
    *,
    info: MdocInfo,
    mdoc: dict[str, str] | None,
    reason: str,
    ended_at: datetime,
    acquired_tilt_count: int,
    key: str = "acquisition-ended",
) -> dict[str, Any]:
    """A ``TiltSeriesAcquisitionEnded`` value (one per series from the watcher: the id ignores content).

    ``expected_tilt_count`` counts the mdoc's sections and ``acquired_tilt_count`` the movies announced,
    retakes included (the aggregator waits for that many movies and picks the newest per angle).
    """
    return {
        "metadata": ctx.metadata("TiltSeriesAcquisitionEnded", (key,), ended_at),
        "ended_at": ended_at,
        "expected_tilt_count": len(info.tilts),  # its [ZValue] sections, retakes included
        "acquired_tilt_count": acquired_tilt_count,
        "mdoc": mdoc,
        "reason": reason,
        "tilt_axis_angle_degrees": info.tilt_axis_angle_degrees,
        "pixel_size_angstroms": info.pixel_size_angstroms,
        "dose_known": info.dose_known(),
        "session_parameters_version": info.parameters_version,
    }


def processing_failed(
    ctx: SeriesContext,
    *,
    subject_id: str,
    error: BaseException,
    occurred_at: datetime,
    movie: str | None = None,
    failure_kind: str = "permanent",
    attempts: int = 1,
) -> dict[str, Any]:
    """A ``ProcessingFailed`` value with stage ``acquisition``; its id is the subject and error class."""
    return {
        "metadata": ctx.metadata("ProcessingFailed", (subject_id, type(error).__name__), occurred_at),
        "stage": "acquisition",
        "subject_id": subject_id,
        "movie_id": movie,
        "request_id": None,
        "error_class": type(error).__name__,
        "error_message": escape_nul(str(error)),
        "failure_kind": failure_kind,
        "attempts": attempts,
        "input_topic": None,
        "input_partition": None,
        "input_offset": None,
    }
