"""Settings of the source connector (``TILTSTREAM_SOURCE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tiltstream.connectors.source.parameters import SessionParameters
from tiltstream.settings import KafkaSettings, TopicSettings

__all__ = ["SourceSettings"]


class SourceSettings(BaseSettings):
    """How the watcher finds, checks, transfers and announces a session's files.

    ``data_root`` is the mount point the root name ``root_name`` stands for (the session directory's
    parent when unset); with ``transfer_to`` the files are copied under that directory, which is then
    the mount point of ``root_name``. Events name files only as ``{root, path}``. ``parameters`` are the
    session's operator-set values (``TILTSTREAM_SOURCE_PARAMETERS__TIME_ZONE=Europe/London`` and so on).
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_SOURCE_", frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    data_root: Path | None = None
    root_name: str = "raw"
    session_id: str | None = None
    microscope: str = "m01"
    instance: str | None = None
    frames_subdirs: tuple[str, ...] = ("", "frames", "Frames")
    poll_interval_seconds: float = Field(default=0.25, gt=0)
    mdoc_settle_seconds: float = Field(default=0.5, ge=0)
    movie_settle_seconds: float = Field(default=10.0, ge=0)
    series_settle_seconds: float = Field(default=300.0, gt=0)
    tilts_per_series: int | None = Field(default=None, ge=1)
    transfer_to: Path | None = None
    delete_source: bool = False
    transfer_bytes_per_second: float | None = Field(default=None, gt=0)
    transfer_attempts: int = Field(default=5, ge=1)
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    history_margin_seconds: float = Field(default=86400.0, ge=0)
    metrics_port: int | None = None
    exit_when_done: bool = False
    parameters: SessionParameters = Field(default_factory=SessionParameters)
