"""Settings of ``tiltstream stats`` (``TILTSTREAM_STATS_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tiltstream.settings import default_state_dir

__all__ = ["StatsSettings"]


def _default_url() -> SecretStr:
    return SecretStr(f"sqlite:///{default_state_dir() / 'ispyb.sqlite'}")


class StatsSettings(BaseSettings):
    """Where the statistics are read: ISPyB as a read-only account (``ispyb_ro_nopii`` is enough), e.g.
    ``TILTSTREAM_STATS_DATABASE_URL=mysql+pymysql://reader:…@ispyb/ispyb``."""

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_STATS_", frozen=True, extra="ignore")

    database_url: SecretStr = Field(default_factory=_default_url)
