"""What every stage's writes share: the rows, facility paths, a run's times, an attempt's outcome."""

from __future__ import annotations

from datetime import datetime, timedelta

from ispyb.sqlalchemy import AutoProcProgram, ProcessingJob
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.chain import Chain
from tiltstream.connectors.ispyb.outcomes import Outcome, Outcomes
from tiltstream.connectors.ispyb.paths import facility_path
from tiltstream.connectors.ispyb.rows import Rows, db_time, earliest, latest
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.streams.events import DataPath, EventMetadata

__all__ = ["StageWrites", "nm"]


def nm(angstroms: float | None) -> float | None:
    """Ångström to nanometre (ISPyB's unit for residual errors), ``None`` kept."""
    return None if angstroms is None else angstroms / 10.0


class StageWrites:
    """The parts of :class:`~tiltstream.connectors.ispyb.writer.IspybWriter` every stage uses.

    Parameters
    ----------
    settings
        Data-root mount points, the service account's login and the visit pattern.
    """

    def __init__(self, settings: IspybSinkSettings) -> None:
        self.roots = dict(settings.roots)
        self.chain = Chain(settings)

    @property
    def rows(self) -> Rows:
        """Checked writes for the database's schema (known after the first :meth:`apply`)."""
        return self.chain.rows

    def _path(self, data_path: DataPath | None) -> str | None:
        return facility_path(data_path, self.roots)

    def _ran(
        self,
        pj: ProcessingJob,
        app: AutoProcProgram,
        ended: datetime,
        duration_seconds: float | None,
        backend: str | None,
    ) -> int:
        """Merge a stage's run into its program: earliest start, latest end (its status: :meth:`_settle`).

        ``duration_seconds`` is ``None`` for a run that has only been requested (it has not finished).
        """
        finished = duration_seconds is not None
        started = ended - timedelta(seconds=float(duration_seconds or 0.0)) if finished else ended
        start, end = db_time(started), db_time(ended) if finished else None
        assign = self.rows.assign
        changed = assign(
            app,
            processingStartTime=earliest(app.processingStartTime, start),
            processingEndTime=latest(app.processingEndTime, end),
            recordTimeStamp=earliest(app.recordTimeStamp, start),
        )
        changed |= assign(pj, recordTimestamp=earliest(pj.recordTimestamp, start))
        if backend is not None:
            changed |= assign(app, processingPrograms=backend)
        return changed * 2

    def _settle(
        self,
        session: Session,
        pj: ProcessingJob,
        app: AutoProcProgram,
        subject: str,
        metadata: EventMetadata,
        failure: str | None = None,
    ) -> tuple[bool, int]:
        """Merge this attempt's outcome for ``subject``: (whether its values are current, rows changed)."""
        outcome = Outcome(metadata.attempt or 1, failure)
        return Outcomes(self.rows).settle(session, pj, app, subject, outcome)
