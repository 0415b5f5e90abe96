"""Deciding about one movie: still arriving, complete (transfer, then announce) or refused."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiltstream.connectors.source.checks import check_movie_event, check_movie_name
from tiltstream.connectors.source.errors import (
    CorruptMovieError,
    InvalidAcquisitionValueError,
    PathOutsideRootError,
    TransferError,
)
from tiltstream.connectors.source.events import movie_acquired, processing_failed
from tiltstream.connectors.source.gain import find_defect_file, find_gain_reference
from tiltstream.connectors.source.movie_check import MovieHeader, check_pixel_size, inspect_movie
from tiltstream.connectors.source.series import MovieState, SeriesState

if TYPE_CHECKING:
    from tiltstream.connectors.source.watcher import Watcher

__all__ = ["MovieStep", "consider_movie"]


@dataclass(frozen=True)
class MovieStep:
    """An event to emit about a movie, and the source file to delete once it is acknowledged."""

    record: str
    value: dict[str, Any]
    delete_after_ack: Path | None


def _refuse(series: SeriesState, movie: MovieState, error: Exception, **kw: Any) -> MovieStep:
    value = processing_failed(
        series.context,
        subject_id=movie.movie_id,
        error=error,
        occurred_at=movie.tilt.acquired_at,
        movie=movie.movie_id,
        **kw,
    )
    return MovieStep("ProcessingFailed", value, None)


def _announce(
    watcher: Watcher,
    series: SeriesState,
    movie: MovieState,
    header: MovieHeader,
    path: Path,
    delete: Path | None,
) -> MovieStep | None:
    """The movie's ``MovieAcquired`` (or its refusal); ``None`` to try again (the gain's copy failed)."""
    assert series.info is not None
    try:
        gain = _reference_data_path(
            watcher, find_gain_reference(watcher, series, movie.tilt.gain_reference_name)
        )
        defects = _reference_data_path(watcher, find_defect_file(watcher, series))
    except TransferError:
        return None
    except InvalidAcquisitionValueError as exc:
        return _refuse(series, movie, exc)
    value = movie_acquired(
        series.context,
        tilt=movie.tilt,
        info=series.info,
        header=header,
        movie=watcher.event_root.data_path(path),
        mdoc=watcher.mdoc_data_path(series),
        position_name=series.position_name,
        gain_reference=gain,
        defect_file=defects,
        parameters=watcher.parameters,
        voltage_kv=series.info.voltage_kv,
        spherical_aberration_mm=watcher.spherical_aberration_mm(),
        amplitude_contrast=watcher.settings.amplitude_contrast,
    )
    try:
        check_movie_event(value, movie.tilt.sub_frame_name)
        if watcher.parameters.pixel_size_angstroms is None:
            check_pixel_size(
                header, value["pixel_size_angstroms"], movie.tilt.binning, movie.tilt.sub_frame_name
            )
    except InvalidAcquisitionValueError as exc:
        return _refuse(series, movie, exc)
    return MovieStep("MovieAcquired", value, delete)


def _reference_data_path(watcher: Watcher, reference: Path | None) -> dict[str, str] | None:
    """A gain reference or defect file as a data path (its verified copy when transferring), or ``None``."""
    if reference is None:
        return None
    if watcher.settings.transfer_to is None:
        return watcher.source_root.data_path(reference)
    destination = watcher.destination_for(reference)
    watcher.transfer(reference, destination)
    return watcher.event_root.data_path(destination)


def consider_movie(watcher: Watcher, series: SeriesState, movie: MovieState, now: float) -> MovieStep | None:
    """What to do about ``movie`` now: ``None`` to wait, or the event to emit.

    A movie is complete when the mdoc names it, its header agrees with its size and the mdoc's frame
    count, and its size and mtime were the same on two scans in a row. One that stays inconsistent for
    ``movie_settle_seconds`` is refused as corrupt; one whose values cannot be true (a tilt angle of
    9999, a NaN dose, a NUL byte in its name) is refused as invalid. With ``transfer_to`` the movie is
    copied (and verified) first and the event names the copy; the source is deleted only after the ack.
    """
    settings = watcher.settings
    acquired_id = series.event_id("MovieAcquired", movie.movie_id)
    if acquired_id in watcher.emitted:
        movie.resolved = "emitted"
        _finish_after_restart(watcher, series, movie)
        return None
    if watcher.refusal_ids(series, movie.movie_id) & watcher.emitted:
        movie.resolved = "failed"
        return None
    if now < movie.retry_at:
        return None
    name = movie.tilt.sub_frame_name
    try:
        check_movie_name(name)  # a NUL byte or '..' from the mdoc: no file can be looked for
    except InvalidAcquisitionValueError as exc:
        return _refuse(series, movie, exc)
    source = watcher.find_source(series, name)
    if source is None:
        return _from_destination(watcher, series, movie)
    try:
        resolved = watcher.source_root.check(source)
        stat = resolved.stat()
    except PathOutsideRootError as exc:
        return _refuse(series, movie, exc)
    except FileNotFoundError:
        return None
    signature = (stat.st_size, stat.st_mtime_ns)
    if signature != movie.signature:
        if movie.signature is None:
            watcher.metrics.files_seen.labels("movie").inc()
        movie.signature, movie.changed_at, series.last_activity = signature, now, now
        return None
    try:
        header = inspect_movie(resolved, movie.tilt.num_sub_frames)
    except CorruptMovieError as exc:
        return (
            _refuse(series, movie, exc) if now - movie.changed_at >= settings.movie_settle_seconds else None
        )
    if settings.transfer_to is None:
        return _announce(watcher, series, movie, header, resolved, None)
    destination = watcher.destination_for(resolved)
    try:
        watcher.transfer(resolved, destination)  # verified copy in place, or TransferError
    except TransferError as exc:
        movie.attempts += 1
        watcher.metrics.errors.labels(type(exc).__name__).inc()
        if movie.attempts >= settings.transfer_attempts:
            return _refuse(series, movie, exc, failure_kind="retries-exhausted", attempts=movie.attempts)
        movie.retry_at = time.monotonic() + min(2.0**movie.attempts, 60.0)
        return None
    delete = resolved if settings.delete_source else None
    return _announce(watcher, series, movie, header, destination, delete)


def _from_destination(watcher: Watcher, series: SeriesState, movie: MovieState) -> MovieStep | None:
    """A movie whose source is gone but whose verified copy is in place (deleted after a crash)."""
    if watcher.settings.transfer_to is None:
        return None
    for candidate in watcher.source_candidates(series, movie.tilt.sub_frame_name):
        destination = watcher.destination_for(candidate)
        if destination.exists():
            try:
                header = inspect_movie(destination, movie.tilt.num_sub_frames)
            except CorruptMovieError as exc:
                return _refuse(series, movie, exc)
            return _announce(watcher, series, movie, header, destination, None)
    return None


def _finish_after_restart(watcher: Watcher, series: SeriesState, movie: MovieState) -> None:
    """An announced movie whose source is still there (killed before the delete): delete it now, once the
    copy is verified to hold the same bytes."""
    if watcher.settings.transfer_to is None or not watcher.settings.delete_source:
        return
    source = watcher.find_source(series, movie.tilt.sub_frame_name)
    if source is None:
        return
    try:
        resolved = watcher.source_root.check(source)
        watcher.transfer(resolved, watcher.destination_for(resolved))
    except (PathOutsideRootError, TransferError):
        return
    resolved.unlink(missing_ok=True)
