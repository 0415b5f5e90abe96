"""Settings of the tilt-series aggregator (``TILTSTREAM_AGGREGATOR_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tiltstream.settings import KafkaSettings, TopicSettings, default_state_dir
from tiltstream.streams.aggregator.rules import Rules

__all__ = ["AggregatorSettings"]


class AggregatorSettings(BaseSettings):
    """Everything ``tiltstream aggregate`` needs.

    The rule fields mirror :class:`~tiltstream.streams.aggregator.rules.Rules`. ``<topic prefix>.<app_id>``
    is the consumer group and names the table's changelog topic, so every instance of one aggregator
    deployment must share it.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_AGGREGATOR_", frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    app_id: str = Field(default="tiltstream-aggregator", pattern=r"^[A-Za-z0-9._-]+$")
    datadir: Path = Field(default_factory=lambda: default_state_dir() / "aggregator")
    grace_seconds: float = Field(default=300.0, ge=0)
    max_ctf_fit_resolution_angstroms: float = Field(default=20.0, gt=0)
    max_total_motion_angstroms: float = Field(default=50.0, gt=0)
    dark_dose_fraction: float = Field(default=0.2, ge=0, le=1)
    dark_brightness_fraction: float = Field(default=0.7, ge=0, le=1)
    dark_neighbours: int = Field(default=4, ge=1)
    min_usable_tilts: int = Field(default=10, ge=1)
    angle_tolerance_degrees: float = Field(default=0.5, ge=0)
    wait_for_ctf: bool = True
    binning: int = Field(default=4, ge=1)
    thickness_angstroms: float = Field(default=3000.0, gt=0)
    inactivity_seconds: float = Field(default=1800.0, gt=0)
    standby_replicas: int = Field(default=1, ge=0)
    tick_interval_seconds: float = Field(default=1.0, gt=0)
    rescan_interval_seconds: float = Field(default=30.0, gt=0)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    stall_check_seconds: float = Field(default=5.0, gt=0)
    session_timeout_seconds: float = Field(default=60.0, ge=6)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    web_port: int | None = Field(default=None, ge=0, le=65535)

    def rules(self) -> Rules:
        """The decision rules these settings describe."""
        return Rules(
            grace_seconds=self.grace_seconds,
            max_ctf_fit_resolution_angstroms=self.max_ctf_fit_resolution_angstroms,
            max_total_motion_angstroms=self.max_total_motion_angstroms,
            dark_dose_fraction=self.dark_dose_fraction,
            dark_brightness_fraction=self.dark_brightness_fraction,
            dark_neighbours=self.dark_neighbours,
            min_usable_tilts=self.min_usable_tilts,
            angle_tolerance_degrees=self.angle_tolerance_degrees,
            wait_for_ctf=self.wait_for_ctf,
            binning=self.binning,
            thickness_angstroms=self.thickness_angstroms,
            inactivity_seconds=self.inactivity_seconds,
        )
