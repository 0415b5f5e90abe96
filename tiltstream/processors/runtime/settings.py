"""Settings every processing service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tiltstream.metrics import DEFAULT_METRICS_PORT
from tiltstream.settings import KafkaSettings, TopicSettings

__all__ = ["ProcessorSettings"]


class ProcessorSettings(BaseSettings):
    """The runtime's knobs (``TILTSTREAM_PROCESSOR_*``; services use their own prefix).

    ``data_roots`` maps the root names that events use to mount points, as JSON in the environment:
    ``TILTSTREAM_MOTIONCORR_DATA_ROOTS='{"raw": "/mnt/raw", "processed": "/mnt/processed"}'``.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_PROCESSOR_", frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    group_id: str = "processor"
    data_roots: dict[str, Path] = Field(
        default_factory=lambda: {"raw": Path("/data/raw"), "processed": Path("/data/processed")}
    )
    output_root: str = "processed"
    device: Literal["auto", "cuda", "cpu"] = "auto"
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_initial_seconds: float = Field(default=2.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, ge=0)
    drain_deadline_seconds: float = Field(default=60.0, ge=0)
    poll_timeout_seconds: float = Field(default=0.2, gt=0)
    stalled_after_seconds: float = Field(default=60.0, gt=0)
    #: Reading one input file (a movie, a micrograph, a tomogram) fails as transient after this long.
    read_timeout_seconds: float = Field(default=600.0, gt=0)
    prefetch: bool = True
    metrics_port: int = Field(default=DEFAULT_METRICS_PORT, ge=0, le=65535)
    instance: str = Field(default_factory=socket.gethostname)
    consumer_overrides: dict[str, str | int] = Field(default_factory=dict)
