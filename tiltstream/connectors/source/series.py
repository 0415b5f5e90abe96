"""The watcher's view of one tilt series: its mdoc, its movies and whether its end is announced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tiltstream.connectors.source.events import SeriesContext, movie_id
from tiltstream.connectors.source.mdoc import MdocInfo, MdocTilt
from tiltstream.streams.metadata import event_id

__all__ = ["MovieState", "SeriesState"]

Signature = tuple[int, int]


@dataclass
class MovieState:
    """One mdoc section's movie: its last file signature (size, mtime) and its outcome."""

    tilt: MdocTilt
    movie_id: str
    signature: Signature | None = None
    changed_at: float = 0.0
    resolved: str | None = None  # "emitted" or "failed"
    attempts: int = 0
    retry_at: float = 0.0


@dataclass
class SeriesState:
    """A tilt series (one ``.mdoc``) as the watcher tracks it."""

    context: SeriesContext
    position_name: str
    mdoc_path: Path
    last_activity: float
    mdoc_signature: Signature | None = None
    mdoc_changed_at: float = 0.0
    parsed_signature: Signature | None = None
    info: MdocInfo | None = None
    movies: dict[str, MovieState] = field(default_factory=dict)
    ended: bool = False
    refused: bool = False

    @property
    def tilt_series_id(self) -> str:
        """The series' id: ``SESSION:MDOC_STEM``."""
        return self.context.tilt_series_id

    def event_id(self, record: str, *key: object) -> str:
        """The id an event of this series with ``key`` has (see :func:`~.events.SeriesContext.metadata`)."""
        return event_id(record, self.tilt_series_id, *key, "", 1)

    def update(self, info: MdocInfo) -> None:
        """Take a newly parsed mdoc and track the movies of its new sections."""
        self.info = info
        for tilt in info.tilts:
            if tilt.sub_frame_name not in self.movies:
                self.movies[tilt.sub_frame_name] = MovieState(
                    tilt, movie_id(self.tilt_series_id, tilt.sub_frame_name)
                )

    def unresolved(self) -> list[MovieState]:
        """Movies neither emitted nor refused yet, in acquisition order."""
        return sorted((m for m in self.movies.values() if m.resolved is None), key=lambda m: m.tilt.z_value)

    def counted_movie_ids(self) -> list[str]:
        """The emitted movies that count (the newest per tilt angle), in acquisition order."""
        newest: dict[float, MovieState] = {}
        for m in sorted(self.movies.values(), key=lambda m: m.tilt.z_value):
            if m.resolved == "emitted":
                newest[round(m.tilt.tilt_angle_degrees, 2)] = m
        return [m.movie_id for m in sorted(newest.values(), key=lambda m: m.tilt.z_value)]

    def failed_movie_ids(self) -> list[str]:
        """Movies refused (corrupt, missing, outside the root), in acquisition order."""
        failed = [m for m in self.movies.values() if m.resolved == "failed"]
        return [m.movie_id for m in sorted(failed, key=lambda m: m.tilt.z_value)]
