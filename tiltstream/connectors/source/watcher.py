"""The watcher: scan a session directory, decide what is complete, emit events, wait for the acks."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from tiltstream.connectors.source.checks import check_series_values
from tiltstream.connectors.source.errors import (
    AcquisitionInputError,
    CorruptMovieError,
    InvalidAcquisitionValueError,
    MdocParseError,
    MissingMovieError,
    PathOutsideRootError,
    TransferError,
)
from tiltstream.connectors.source.events import SeriesContext, acquisition_ended, processing_failed
from tiltstream.connectors.source.history import EmittedHistory, EndFollower, read_history
from tiltstream.connectors.source.mdoc import read_mdoc, series_name
from tiltstream.connectors.source.metrics import WatcherMetrics
from tiltstream.connectors.source.movies import MovieStep, consider_movie
from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.connectors.source.paths import DataRoot
from tiltstream.connectors.source.series import SeriesState
from tiltstream.connectors.source.session_events import ParametersFollower, latest_parameters
from tiltstream.connectors.source.settings import SourceSettings
from tiltstream.connectors.source.transfer import TransferResult, transfer_file
from tiltstream.log import get_logger
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_producer
from tiltstream.streams.delivery import Delivery, DeliveryError
from tiltstream.streams.producer import EventProducer

__all__ = ["Pending", "Watcher"]

#: Refusals whose ProcessingFailed ids the watcher looks for when it decides a movie was refused.
_REFUSALS = (
    PathOutsideRootError,
    CorruptMovieError,
    MissingMovieError,
    TransferError,
    InvalidAcquisitionValueError,
)


@dataclass
class Pending:
    """An event to send in this scan and what to do once the broker acknowledged it."""

    record: str
    value: dict[str, Any]
    on_ack: Callable[[], None]
    detected_at: float


class Watcher:
    """Watch one session directory and announce its movies and tilt series.

    Parameters
    ----------
    session_dir
        The microscope's session directory (``*.mdoc`` at its top, movies beside them or in ``frames/``).
    settings
        See :class:`~.settings.SourceSettings`.
    producer
        Sends the events; built from ``settings.kafka`` when omitted.
    registry
        Prometheus registry for :class:`~.metrics.WatcherMetrics`.
    on_acknowledged
        Called with (record, value, wall-clock time) for each acknowledged event (benchmarks).
    """

    def __init__(
        self,
        session_dir: Path,
        settings: SourceSettings,
        *,
        producer: EventProducer | None = None,
        registry: CollectorRegistry | None = None,
        on_acknowledged: Callable[[str, dict[str, Any], float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.source_root = DataRoot(settings.root_name, settings.data_root or session_dir.absolute().parent)
        self.session_dir = self.source_root.check(session_dir)
        self.event_root = (
            DataRoot(settings.root_name, settings.transfer_to) if settings.transfer_to else self.source_root
        )
        self.session_id = settings.session_id or self.session_dir.name
        self.catalogue = Catalogue(settings.topics)
        self.producer = producer or EventProducer(create_producer(settings.kafka), self.catalogue)
        self.metrics = WatcherMetrics(registry)
        self.on_acknowledged = on_acknowledged
        self.emitted: set[str] = set()
        self.history = EmittedHistory()
        self.series: dict[Path, SeriesState] = {}
        self._follower: EndFollower | None = None
        self._parameters_follower: ParametersFollower | None = None
        self.parameters: SessionParameters = settings.parameters
        # bound here, not at import, so that the entry point's logging configuration applies
        self._log = get_logger(__name__).bind(session_id=self.session_id, microscope=settings.microscope)

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow operator ends, read back what was already emitted, and clear stale partial copies."""
        self._follower = EndFollower(self.settings.kafka, self.catalogue, self.session_id)
        self._follower.start()
        self._parameters_follower = ParametersFollower(self.settings.kafka, self.catalogue, self.session_id)
        self._parameters_follower.start()
        self._take_parameters(latest_parameters(self.settings.kafka, self.catalogue, self.session_id))
        since = self._oldest_file_time() - timedelta(seconds=self.settings.history_margin_seconds)
        self.history = read_history(self.settings.kafka, self.catalogue, self.session_id, since)
        self.emitted |= self.history.event_ids
        self._log.info(
            "watcher started",
            session_dir=str(self.session_dir),
            known_events=len(self.history.event_ids),
            ended_series=len(self.history.ended_series),
            transfer_to=str(self.settings.transfer_to) if self.settings.transfer_to else None,
        )
        if self.settings.transfer_to is not None:
            destination = self.destination_dir()
            for stale in destination.rglob(".*.partial") if destination.exists() else []:
                stale.unlink(missing_ok=True)
                self._log.info("removed a partial copy left by an earlier run", path=str(stale))

    def run(self, stop: threading.Event) -> None:
        """Scan every ``poll_interval_seconds`` until ``stop`` is set (or, with ``exit_when_done``, until
        every series seen has ended); the scan in progress finishes and its events are acknowledged."""
        self.start()
        try:
            while not stop.is_set():
                self.scan_once()
                if self.settings.exit_when_done and self.done():
                    self._log.info("every tilt series has ended; exiting")
                    break
                stop.wait(self.settings.poll_interval_seconds)
        finally:
            self.close()

    def close(self) -> None:
        """Stop following and flush the producer."""
        if self._follower is not None:
            self._follower.close()
        if self._parameters_follower is not None:
            self._parameters_follower.close()
        with contextlib.suppress(DeliveryError):
            self.producer.flush(30)

    def done(self) -> bool:
        """True when at least one series was seen and every series seen has ended with nothing pending
        (or its mdoc was refused before it could be read)."""
        return bool(self.series) and all(
            (s.ended and not s.unresolved()) or (s.refused and s.info is None) for s in self.series.values()
        )

    # -- scanning ---------------------------------------------------------------------------------------

    def scan_once(self) -> None:
        """One pass: refresh mdocs, find complete movies, decide ends; send and wait for the acks."""
        now = time.monotonic()
        if self._parameters_follower is not None:
            self._take_parameters(self._parameters_follower.latest())
        pending: list[Pending] = []
        for path in sorted(self.session_dir.glob("*.mdoc")):
            series = self.series.get(path) or self._new_series(path, now)
            pending += self._refresh_mdoc(series, now)
        for series in self.series.values():
            for movie in series.unresolved():
                step = consider_movie(self, series, movie, now)
                if step is not None:
                    pending.append(self._pending_for(series, movie, step, now))
        self._send(pending)
        ends: list[Pending] = []
        for series in self.series.values():
            ends += self._consider_end(series, time.monotonic())
        self._send(ends)
        self.metrics.open_series.set(sum(not s.ended for s in self.series.values()))

    def _take_parameters(self, latest: SessionParameters | None) -> None:
        """Apply a newer version of the session parameters (from the topic) to what is read from now on:
        every mdoc is read again with it (new movies get its values; a series refused for a missing value
        is looked at again)."""
        if latest is None or latest.version <= self.parameters.version:
            return
        self.parameters = latest
        self._log.info("session parameters applied", version=latest.version)
        for series in self.series.values():
            series.parsed_signature = None
            if series.info is None:
                series.refused = False

    def _new_series(self, path: Path, now: float) -> SeriesState:
        ctx = SeriesContext(
            microscope=self.settings.microscope,
            session_id=self.session_id,
            tilt_series_id=f"{self.session_id}:{series_name(path)}",
            instance=self.settings.instance,
        )
        series = SeriesState(ctx, series_name(path), path, last_activity=now)
        self.series[path] = series
        self.metrics.files_seen.labels("mdoc").inc()
        return series

    def _refresh_mdoc(self, series: SeriesState, now: float) -> list[Pending]:
        try:
            resolved = self.source_root.check(series.mdoc_path)
            stat = resolved.stat()
        except PathOutsideRootError as exc:
            return self._refuse_mdoc(series, exc, b"")
        except FileNotFoundError:
            return []
        signature = (stat.st_size, stat.st_mtime_ns)
        if signature != series.mdoc_signature:
            series.mdoc_signature, series.mdoc_changed_at, series.last_activity = signature, now, now
            return []
        if (
            signature == series.parsed_signature
            or now - series.mdoc_changed_at < self.settings.mdoc_settle_seconds
        ):
            return []
        series.parsed_signature = signature
        try:
            info = read_mdoc(resolved, self.parameters)
            check_series_values(series.context, info, resolved.name)
        except (AcquisitionInputError, OSError) as exc:
            error = exc if isinstance(exc, AcquisitionInputError) else MdocParseError(str(exc))
            return self._refuse_mdoc(series, error, resolved.read_bytes() if resolved.exists() else b"")
        series.update(info)
        if self.settings.transfer_to is not None:
            try:
                transfer_file(resolved, self.destination_for(resolved))
            except TransferError as exc:
                self._log.warning("mdoc copy failed; will retry", error=str(exc))
                series.parsed_signature = None
        return []

    def _refuse_mdoc(
        self, series: SeriesState, error: AcquisitionInputError, content: bytes
    ) -> list[Pending]:
        subject = series.event_id("Mdoc", series.mdoc_path.name, hashlib.sha256(content).hexdigest()[:16])
        value = processing_failed(
            series.context, subject_id=subject, error=error, occurred_at=datetime.now(UTC)
        )
        if value["metadata"]["event_id"] in self.emitted:
            series.refused = True
            return []
        series.refused = True
        self.metrics.errors.labels(type(error).__name__).inc()
        self._log.error("mdoc refused", tilt_series_id=series.tilt_series_id, error=str(error))
        return [Pending("ProcessingFailed", value, lambda: None, time.monotonic())]

    def _pending_for(self, series: SeriesState, movie: Any, step: MovieStep, now: float) -> Pending:
        def acknowledged() -> None:
            movie.resolved = "failed" if step.record == "ProcessingFailed" else "emitted"
            if step.delete_after_ack is not None:
                step.delete_after_ack.unlink(missing_ok=True)

        if step.record == "ProcessingFailed":
            self.metrics.errors.labels(step.value["error_class"]).inc()
            self._log.error(
                "movie refused",
                tilt_series_id=series.tilt_series_id,
                movie_id=movie.movie_id,
                movie=movie.tilt.sub_frame_name,
                error=step.value["error_message"],
            )
        return Pending(step.record, step.value, acknowledged, now)

    def _consider_end(self, series: SeriesState, now: float) -> list[Pending]:
        if series.ended or series.info is None:
            return []
        end_id = series.event_id("TiltSeriesAcquisitionEnded", "acquisition-ended")
        announced = self.history.ended_series | (self._follower.ended() if self._follower else set())
        if end_id in self.emitted or series.tilt_series_id in announced:
            series.ended = True
            return []
        unresolved = series.unresolved()
        angles = series.info.distinct_angles()
        plan = self.settings.tilts_per_series
        quiet = now - series.last_activity >= self.settings.series_settle_seconds
        if not (quiet or (not unresolved and plan is not None and len(angles) >= plan)):
            return []
        if unresolved:
            return [
                self._missing(series, m)
                for m in unresolved
                if not self._present(series, m.tilt.sub_frame_name)
            ]
        expected = plan or max(len(s.info.distinct_angles()) for s in self.series.values() if s.info)
        reason = "cancelled" if len(angles) < expected else "completed"
        counted = series.counted_movie_ids()
        announced_movies = sum(m.resolved == "emitted" for m in series.movies.values())
        ended_at = max(t.acquired_at for t in series.info.tilts) if series.info.tilts else datetime.now(UTC)
        value = acquisition_ended(
            series.context,
            info=series.info,
            mdoc=self.mdoc_data_path(series),
            reason=reason,
            ended_at=ended_at,
            acquired_tilt_count=announced_movies,
        )

        def acknowledged() -> None:
            series.ended = True
            self._log.info(
                "tilt series ended",
                tilt_series_id=series.tilt_series_id,
                reason=reason,
                movies=announced_movies,
                tilts=len(angles),
                counted_movie_ids=counted,
                refused_movie_ids=series.failed_movie_ids(),
            )

        return [Pending("TiltSeriesAcquisitionEnded", value, acknowledged, now)]

    def _missing(self, series: SeriesState, movie: Any) -> Pending:
        error = MissingMovieError(f"{movie.tilt.sub_frame_name} is named in the mdoc but never arrived")
        value = processing_failed(
            series.context,
            subject_id=movie.movie_id,
            error=error,
            occurred_at=movie.tilt.acquired_at,
            movie=movie.movie_id,
        )
        return self._pending_for(series, movie, MovieStep("ProcessingFailed", value, None), time.monotonic())

    def _send(self, pending: list[Pending]) -> None:
        sent: list[tuple[Pending, Delivery]] = []
        for item in pending:
            sent.append((item, self.producer.send(item.record, item.value)))
        if not sent:
            return
        try:
            self.producer.wait([d for _, d in sent], timeout=self.settings.kafka.request_timeout_seconds * 2)
        except DeliveryError as exc:
            self._log.warning("events not acknowledged; they will be sent again", error=str(exc))
        for item, delivery in sent:
            if not delivery.done or delivery.error is not None:
                continue
            acked = time.monotonic()
            self.emitted.add(item.value["metadata"]["event_id"])
            item.on_ack()
            self.metrics.events_emitted.labels(item.record).inc()
            if item.record == "MovieAcquired":
                self.metrics.emit_latency.observe(acked - item.detected_at)
            if self.on_acknowledged is not None:
                self.on_acknowledged(item.record, item.value, time.time())

    # -- paths ------------------------------------------------------------------------------------------

    def source_candidates(self, series: SeriesState, name: str) -> list[Path]:
        """Where a movie named in an mdoc may lie: beside the mdoc or in its frames folders."""
        return [series.mdoc_path.parent / sub / name for sub in self.settings.frames_subdirs]

    def find_source(self, series: SeriesState, name: str) -> Path | None:
        """The movie's source file if it exists (a link is returned as it is, for the root check)."""
        return next((p for p in self.source_candidates(series, name) if os.path.lexists(p)), None)

    def _present(self, series: SeriesState, name: str) -> bool:
        if self.find_source(series, name) is not None:
            return True
        return self.settings.transfer_to is not None and any(
            self.destination_for(p).exists() for p in self.source_candidates(series, name)
        )

    def destination_dir(self) -> Path:
        """The session's folder in facility storage (with ``transfer_to``)."""
        assert self.settings.transfer_to is not None
        return self.event_root.directory / self.source_root.relative(self.session_dir)

    def destination_for(self, source: Path) -> Path:
        """Where ``source`` is copied to: the same path relative to the root, under ``transfer_to``."""
        relative = Path(os.path.realpath(source)).relative_to(self.source_root.directory)
        return self.event_root.directory / relative

    def mdoc_data_path(self, series: SeriesState) -> dict[str, str] | None:
        """The series' mdoc as a ``DataPath`` (its copy when transferring)."""
        try:
            if self.settings.transfer_to is not None:
                return self.event_root.data_path(self.destination_for(series.mdoc_path))
            return self.source_root.data_path(series.mdoc_path)
        except PathOutsideRootError:
            return None

    def transfer(self, source: Path, destination: Path) -> TransferResult:
        """Copy with the configured throttle, counting bytes."""
        return transfer_file(
            source,
            destination,
            bytes_per_second=self.settings.transfer_bytes_per_second,
            on_bytes=self.metrics.bytes_transferred.inc,
        )

    def _oldest_file_time(self) -> datetime:
        oldest = time.time()
        folders = [self.session_dir, *(self.session_dir / s for s in self.settings.frames_subdirs if s)]
        if self.settings.transfer_to is not None:
            folders.append(self.destination_dir())
        for folder in folders:
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        oldest = min(oldest, entry.stat(follow_symlinks=False).st_mtime)
        return datetime.fromtimestamp(oldest, UTC)

    def spherical_aberration_mm(self) -> float:
        """Cs: the session parameters' override, else the configured default."""
        override = self.parameters.spherical_aberration_mm
        return override if override is not None else self.settings.spherical_aberration_mm

    def refusal_ids(self, series: SeriesState, subject: str) -> set[str]:
        """Ids the ProcessingFailed refusing ``subject`` would have, whatever the reason."""
        return {series.event_id("ProcessingFailed", subject, cls.__name__) for cls in _REFUSALS}
