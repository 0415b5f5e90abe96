"""Visits and data collections: the rows a facility's acquisition side owns, found or written two ways.

* :class:`RoutineAcquisition` — the canonical schema, as its ``ispyb_processing`` role may: the visit by
  ``retrieve_visit_id``, the DataCollectionGroup and DataCollection by ``upsert_dcgroup`` and ``upsert_dc``,
  read back by ``retrieve_dc_main``. That role cannot read DataCollection, so the sink records which data
  collection holds a tilt series in a ProcessingJob of its own (recipe ``tiltstream-series``, comments = the
  tilt series id) and finds it there. ``upsert_dc`` has no image-size parameters: those columns stay empty.
* :class:`OrmAcquisition` — ORM-built databases: the rows directly through the models, and (only with
  ``create_visits``) Person, Proposal and BLSession for a visit it does not find.

Either way an unknown visit raises :class:`~tiltstream.connectors.ispyb.errors.VisitNotFoundError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from ispyb.sqlalchemy import BLSession, DataCollection, DataCollectionGroup, Person, ProcessingJob, Proposal
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.errors import RecordRejectedError, VisitNotFoundError
from tiltstream.connectors.ispyb.probe import SchemaInfo
from tiltstream.connectors.ispyb.rows import Rows, db_time, earliest

__all__ = ["SERIES_RECIPE", "Acquisition", "CollectionChanges", "OrmAcquisition", "RoutineAcquisition"]

#: Recipe of the sink's ProcessingJob that ties a tilt series to its DataCollection (canonical schema).
SERIES_RECIPE = "tiltstream-series"


@dataclass(frozen=True)
class CollectionChanges:
    """What an event says about its data collection: earliest start, end, and plain column values."""

    started: datetime | None = None
    ended: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)


class Acquisition(Protocol):
    """Finding visits and writing data collections."""

    def session_id(self, session: Session, visit: str, microscope: str) -> int:
        """``BLSession.sessionId`` of ``visit``; raises VisitNotFoundError."""

    def find(self, session: Session, session_id: int, prefix: str, series: str) -> int | None:
        """The DataCollection of tilt series ``series`` (``prefix`` within the visit), if any."""

    def create(self, session: Session, session_id: int, prefix: str, series: str) -> int:
        """A new DataCollectionGroup (``tomo``) and DataCollection for the series; its id."""

    def merge(self, session: Session, session_id: int, dc_id: int, changes: CollectionChanges) -> int:
        """Apply ``changes``; return 1 when anything changed."""


class RoutineAcquisition:
    """The canonical schema's stored routines (see the module docstring)."""

    def __init__(self, rows: Rows, schema: SchemaInfo) -> None:
        self.rows = rows
        self.parameters = {
            name: [p.lower() for p in schema.parameters[name]] for name in ("upsert_dc", "upsert_dcgroup")
        }

    def _call(self, session: Session, function: str, values: dict[str, Any]) -> int:
        names = self.parameters[function]
        given = {f"p_{k}".lower(): v for k, v in values.items()}
        placeholders = ", ".join(f":a{i}" for i in range(len(names)))
        arguments = {f"a{i}": given.get(name) for i, name in enumerate(names)}
        found = session.execute(sa.text(f"SELECT {function}({placeholders})"), arguments).scalar_one()
        return int(found)

    def session_id(self, session: Session, visit: str, microscope: str) -> int:
        longest = self.rows.schema.lengths.get("retrieve_visit_id.p_visit")
        if longest and len(visit) > longest:
            raise RecordRejectedError(f"session id {visit!r} is longer than a visit ({longest} characters)")
        found = session.execute(sa.text("SELECT retrieve_visit_id(:visit)"), {"visit": visit}).scalar()
        if found is None:
            raise VisitNotFoundError(visit)
        return int(found)

    def find(self, session: Session, session_id: int, prefix: str, series: str) -> int | None:
        found = session.scalar(
            sa.select(ProcessingJob.dataCollectionId)
            .where(ProcessingJob.recipe == SERIES_RECIPE, ProcessingJob.comments == series)
            .order_by(ProcessingJob.processingJobId)
            .limit(1)
        )
        return None if found is None else int(found)

    def create(self, session: Session, session_id: int, prefix: str, series: str) -> int:
        self.rows.check("DataCollection", "imagePrefix", prefix)
        group = self._call(session, "upsert_dcgroup", {"parentId": session_id, "experimenttype": "tomo"})
        dc = self._call(
            session, "upsert_dc", {"parentId": group, "visitId": session_id, "imagePrefix": prefix}
        )
        self.rows.insert(
            session,
            ProcessingJob,
            dataCollectionId=dc,
            displayName="tilt series",
            recipe=SERIES_RECIPE,
            comments=series,
            automatic=1,
        )
        return dc

    def merge(self, session: Session, session_id: int, dc_id: int, changes: CollectionChanges) -> int:
        current = session.execute(sa.text("CALL retrieve_dc_main(:id)"), {"id": dc_id}).mappings().one()
        readable = {
            "startTime": earliest(current["startTime"], db_time(changes.started)),
            "endTime": db_time(changes.ended) or current["endTime"],
            "runStatus": changes.values.get("runStatus", current["status"]),
            "numberOfImages": changes.values.get("numberOfImages", current["noImages"]),
            "imageDirectory": changes.values.get("imageDirectory", current["imgDir"]),
            "imageSuffix": changes.values.get("imageSuffix", current["imgSuffix"]),
        }
        before = {
            "startTime": current["startTime"],
            "endTime": current["endTime"],
            "runStatus": current["status"],
            "numberOfImages": current["noImages"],
            "imageDirectory": current["imgDir"],
            "imageSuffix": current["imgSuffix"],
        }
        if readable == before:
            return 0
        values = {k: v for k, v in changes.values.items() if f"p_{k}".lower() in self.parameters["upsert_dc"]}
        values.update(readable)
        for name, value in values.items():
            self.rows.check("DataCollection", name, value)
        window = {"starttime": values["startTime"], "endtime": values["endTime"]}
        # strict mode checks the INSERT half of INSERT ... ON DUPLICATE KEY UPDATE too: give the parents
        group = {"Id": dc_id, "parentId": current["groupId"], "visitId": session_id}
        self._call(session, "upsert_dc", {**group, **{k.lower(): v for k, v in values.items()}})
        self._call(session, "upsert_dcgroup", {"id": current["groupId"], "parentId": session_id, **window})
        return 1


class OrmAcquisition:
    """The models, directly (ORM-built databases).

    Parameters
    ----------
    rows
        Checked writes for this database.
    person_login
        Owner of the proposals the sink creates (``create_visits`` only).
    visit_pattern
        Regular expression with groups ``code``, ``number`` and ``visit``.
    create_visits
        Create Person, Proposal and BLSession of a visit not found (else raise VisitNotFoundError).
    """

    def __init__(self, rows: Rows, person_login: str, visit_pattern: str, *, create_visits: bool) -> None:
        self.rows = rows
        self.person_login = person_login
        self.visit = re.compile(visit_pattern)
        self.create_visits = create_visits

    def _unique(self, session: Session, model: type[Any], again: sa.Select[Any], **values: Any) -> Any:
        """Insert a row; if a concurrent writer inserted the same unique key first, return theirs."""
        if session.get_bind().dialect.name == "sqlite":  # one writer: no race, and no SAVEPOINT needed
            return self.rows.insert(session, model, **values)
        try:
            with session.begin_nested():
                return self.rows.insert(session, model, **values)
        except sa.exc.IntegrityError:
            found = session.scalar(again)
            if found is None:
                raise
            return found

    def session_id(self, session: Session, visit: str, microscope: str) -> int:
        match = self.visit.fullmatch(visit)
        if match is None:
            raise RecordRejectedError(f"session id {visit!r} is not a visit like 'cm40000-1'")
        code, number, visit_number = match["code"], match["number"], int(match["visit"])
        proposals = sa.select(Proposal).where(
            Proposal.proposalCode == code, Proposal.proposalNumber == number
        )
        proposal = session.scalar(proposals)
        sessions = sa.select(BLSession).where(
            BLSession.proposalId == (proposal.proposalId if proposal else None),
            BLSession.visit_number == visit_number,
        )
        blsession = session.scalar(sessions) if proposal is not None else None
        if blsession is not None:
            return int(blsession.sessionId)
        if not self.create_visits:
            raise VisitNotFoundError(visit)
        if proposal is None:
            people = sa.select(Person).where(Person.login == self.person_login)
            person = session.scalar(people) or self._unique(
                session, Person, people, login=self.person_login, familyName="tiltstream"
            )
            proposal = self._unique(
                session, Proposal, proposals, personId=person.personId, proposalCode=code,
                proposalNumber=number, title=f"{code}{number}",
            )  # fmt: skip
        sessions = sa.select(BLSession).where(
            BLSession.proposalId == proposal.proposalId, BLSession.visit_number == visit_number
        )
        blsession = self._unique(
            session, BLSession, sessions, proposalId=proposal.proposalId, visit_number=visit_number,
            beamLineName=microscope,
        )  # fmt: skip
        return int(blsession.sessionId)

    def find(self, session: Session, session_id: int, prefix: str, series: str) -> int | None:
        found = session.scalar(
            sa.select(DataCollection.dataCollectionId).where(
                DataCollection.SESSIONID == session_id,  # noqa: SIM300
                DataCollection.imagePrefix == prefix,
            )
        )
        return None if found is None else int(found)

    def create(self, session: Session, session_id: int, prefix: str, series: str) -> int:
        group = self.rows.insert(session, DataCollectionGroup, sessionId=session_id, experimentType="tomo")
        dc = self.rows.insert(
            session,
            DataCollection,
            dataCollectionGroupId=group.dataCollectionGroupId,
            SESSIONID=session_id,
            imagePrefix=prefix,
            experimenttype="tomo",
        )
        return int(dc.dataCollectionId)

    def merge(self, session: Session, session_id: int, dc_id: int, changes: CollectionChanges) -> int:
        dc = session.get_one(DataCollection, dc_id)
        group = session.get_one(DataCollectionGroup, dc.dataCollectionGroupId)
        changed = self.rows.assign(
            dc, **changes.values, startTime=earliest(dc.startTime, db_time(changes.started))
        )
        changed |= self.rows.assign(group, startTime=earliest(group.startTime, db_time(changes.started)))
        if changes.ended is not None:
            changed |= self.rows.assign(dc, endTime=changes.ended)
            changed |= self.rows.assign(group, endTime=changes.ended)
        return changed
