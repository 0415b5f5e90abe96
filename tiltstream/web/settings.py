"""Settings of the web view (``TILTSTREAM_WEB_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tiltstream.settings import KafkaSettings, TopicSettings, default_state_dir

__all__ = ["WebSettings"]


def _default_url() -> SecretStr:
    return SecretStr(f"sqlite:///{default_state_dir() / 'ispyb.sqlite'}")


class WebSettings(BaseSettings):
    """Where the web view listens, what it reads, and who may read which session.

    ``roots`` names the directories whose files may be served: every path found in ISPyB must resolve
    (symbolic links followed) inside one of them, e.g.
    ``TILTSTREAM_WEB_ROOTS='{"raw": "/dls/m02/data/2026/cm40000-1/raw", "processed": "/dls/..."}'``.
    ``tokens`` maps a session (``cm40000-1``) or a whole proposal (``cm40000``) to its read token, e.g.
    ``TILTSTREAM_WEB_TOKENS='{"cm40000-1": "..."}'``; a session without a token is not served.
    ``stats_token`` opens the facility's usage statistics (``/stats``, every microscope and session);
    unset, that page is off (a session's own statistics need only its token).
    ``follow_status`` off: ISPyB only (no live updates, no dead letters), for a view without Kafka.
    """

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_WEB_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    database_url: SecretStr = Field(default_factory=_default_url)
    roots: dict[str, Path] = Field(
        default_factory=lambda: {"raw": Path("/data/raw"), "processed": Path("/data/processed")}
    )
    tokens: dict[str, SecretStr] = Field(default_factory=dict)
    stats_token: SecretStr | None = None
    visit_pattern: str = r"(?P<code>[a-z]+)(?P<number>\d+)-(?P<visit>\d+)"
    follow_status: bool = True
    secure_cookies: bool = False
    slice_cache_entries: int = Field(default=256, ge=0)
    slice_max_pixels: int = Field(default=512, ge=64, le=4096)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
