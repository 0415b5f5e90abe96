"""A trivial extra stage for tests: it counts the corrected tilts of each series.

It stands in for a new stage (segmentation, picking ...) to show what adding one takes: this module, its
schema (``tests/schemas/tiltstream.events.TiltsCounted.avsc``) and one declaration in the stage registry.
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import SettingsConfigDict

from tiltstream.processors.runtime import DataRoots, Job, Output, Processor, ProcessorSettings

__all__ = ["TiltCounterProcessor", "TiltCounterSettings"]


class TiltCounterSettings(ProcessorSettings):
    """The tilt counter's settings (``TILTSTREAM_TILTCOUNT_*``)."""

    model_config = SettingsConfigDict(env_prefix="TILTSTREAM_TILTCOUNT_", frozen=True, extra="ignore")

    group_id: str = "tiltstream-tiltcount"


class TiltCounterProcessor(Processor[None]):
    """``MovieMotionCorrected`` in, ``TiltsCounted`` out: how many distinct tilts of the series this
    instance has seen corrected (a stand-in: the count lives in memory)."""

    stage = "tiltcount"
    input_record = "MovieMotionCorrected"
    output_record = "TiltsCounted"

    def __init__(self, settings: TiltCounterSettings, roots: DataRoots | None = None) -> None:
        super().__init__(roots or DataRoots(settings.data_roots), settings.output_root)
        self.settings = settings
        self._seen: dict[str, set[str]] = {}

    def process(self, job: Job, inputs: None) -> list[Output]:
        """Count the movie in its series and say how many tilts are counted now."""
        value = job.value
        seen = self._seen.setdefault(str(value["metadata"]["tilt_series_id"]), set())
        seen.add(str(value["movie_id"]))
        event: dict[str, Any] = {
            "metadata": self.output_metadata(job, (value["movie_id"],), self.settings.instance).to_dict(),
            "movie_id": value["movie_id"],
            "tilts_counted": len(seen),
        }
        return [Output(self.output_record, event)]
