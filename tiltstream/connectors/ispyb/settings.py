"""Settings of the ISPyB sink (``TILTSTREAM_ISPYB_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tiltstream.settings import KafkaSettings, TopicSettings, default_state_dir

__all__ = ["IspybSinkSettings"]


def _default_url() -> SecretStr:
    return SecretStr(f"sqlite:///{default_state_dir() / 'ispyb.sqlite'}")


class IspybSinkSettings(BaseSettings):
    """Where the sink writes, how it batches, and how event paths become the facility's paths.

    ``roots`` maps each data-root name of the events (``raw``, ``processed``) to the directory where the
    facility mounts it, e.g. ``TILTSTREAM_ISPYB_ROOTS='{"raw": "/dls/m02/data/2026/cm40000-1/raw"}'``.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_ISPYB_", frozen=True, extra="ignore")

    database_url: SecretStr = Field(default_factory=_default_url)
    group_id: str = "tiltstream-ispyb-sink"
    batch_size: int = Field(default=500, ge=1, le=100_000)
    linger_seconds: float = Field(default=0.5, ge=0)
    roots: dict[str, str] = Field(
        default_factory=lambda: {"raw": "/data/raw", "processed": "/data/processed"}
    )
    person_login: str = "tiltstream"
    create_visits: bool = False
    visit_pattern: str = r"(?P<code>[a-z]+)(?P<number>\d+)-(?P<visit>\d+)"
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    check_schema: bool = True
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
