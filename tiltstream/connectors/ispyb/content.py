"""What a session left in ISPyB, independent of the order things happened in: comparable across runs.

Surrogate ids (auto-increment numbers that depend on which event came first) become natural keys: a data
collection is its visit and image prefix, a movie its collection and number, a program its job UUID (made
from the series, stage and request). Timestamps are dropped, and so are the outcome rows of successful
attempts (which attempt is current is bookkeeping: a reprocessed series ends with the same results as
one processed once). Floats are compared with a relative tolerance.

Used to diff a database rebuilt by replay against the one the live run wrote (the rebuild benchmark and
its test), and by the end-to-end tests.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tiltstream.connectors.ispyb.schema import SINK_TABLES

__all__ = ["Row", "content_differences", "ispyb_content"]

Row = tuple[tuple[str, Any], ...]

#: Row ids that name nothing outside the database: dropped.
_DROPPED = {
    "ctfId",
    "processedTomogramId",
    "processingJobParameterId",
    "personId",
    "proposalId",
    "sessionId",
    "SESSIONID",
}


def ispyb_content(engine: Engine, workdir: Path) -> dict[str, list[Row]]:
    """Every sink table's rows with natural keys instead of ids, without timestamps, sorted.

    Paths under ``workdir`` (where the session's data roots are) start with ``<session>`` instead.
    """
    prefix = str(workdir)
    metadata = sa.MetaData()
    with engine.connect() as db:
        tables = {name: sa.Table(name, metadata, autoload_with=db) for name in SINK_TABLES}
        rows = {name: [dict(r._mapping) for r in db.execute(sa.select(t))] for name, t in tables.items()}
    rows["ProcessingJobParameter"] = [r for r in rows["ProcessingJobParameter"] if not _succeeded(r)]
    names = _collection_names(rows)
    dc = names["dataCollectionId"]
    names["processingJobId"] = {
        r["processingJobId"]: (dc.get(r["dataCollectionId"]), r["recipe"], r["comments"])
        for r in rows["ProcessingJob"]
    }
    jobs = names["processingJobId"]
    names["autoProcProgramId"] = {  # the program's job (jobUuid is not in every schema version)
        r["autoProcProgramId"]: jobs.get(r["processingJobId"]) for r in rows["AutoProcProgram"]
    }
    names["movieId"] = {
        r["movieId"]: (dc.get(r["dataCollectionId"]), r["movieNumber"]) for r in rows["Movie"]
    }
    names["motionCorrectionId"] = {
        r["motionCorrectionId"]: names["movieId"].get(r["movieId"]) for r in rows["MotionCorrection"]
    }
    names["tomogramId"] = {r["tomogramId"]: dc.get(r["dataCollectionId"]) for r in rows["Tomogram"]}
    content: dict[str, list[Row]] = {}
    for table, found in rows.items():
        canonical = []
        for row in found:
            items = []
            for column, value in row.items():
                if column in _DROPPED or isinstance(value, datetime):
                    continue
                if column in names and value is not None:
                    value = names[column].get(value, ("unknown", value))
                if isinstance(value, str) and value.startswith(prefix):
                    value = "<session>" + value.removeprefix(prefix)
                if column == "processingMessage" and value:
                    value = " ".join(value.split(" ")[1:])  # drop the failure's time stamp
                items.append((column, value))
            canonical.append(tuple(items))
        content[table] = sorted(canonical, key=_identity)
    return content


def _collection_names(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[Any, Any]]:
    """A data collection (and its group) is its visit and image prefix: series names repeat across visits."""
    proposals = {r["proposalId"]: f"{r['proposalCode']}{r['proposalNumber']}" for r in rows["Proposal"]}
    visits = {
        r["sessionId"]: f"{proposals.get(r['proposalId'])}-{r['visit_number']}" for r in rows["BLSession"]
    }
    group_visit = {
        r["dataCollectionGroupId"]: visits.get(r["sessionId"]) for r in rows["DataCollectionGroup"]
    }
    collections = rows["DataCollection"]
    named = {
        r["dataCollectionId"]: (group_visit.get(r["dataCollectionGroupId"]), r["imagePrefix"])
        for r in collections
    }
    groups = {r["dataCollectionGroupId"]: named[r["dataCollectionId"]] for r in collections}
    return {"dataCollectionId": named, "dataCollectionGroupId": groups}


def _succeeded(row: dict[str, Any]) -> bool:
    """An outcome row of a successful attempt: bookkeeping of which attempt is current, not a result."""
    key, value = str(row.get("parameterKey") or ""), str(row.get("parameterValue") or "")
    number, _, rest = value.partition(" ")
    return key.startswith("outcome:") and number.isdigit() and rest == "ok"


def _identity(row: Row) -> str:
    return repr([(c, v) for c, v in row if not isinstance(v, float)])


def _close(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)
    return bool(a == b)


def content_differences(
    expected: dict[str, list[Row]], actual: dict[str, list[Row]], rel: float = 1e-3
) -> list[str]:
    """Human-readable differences between two :func:`ispyb_content` results (empty when the same)."""
    problems = []
    for table in SINK_TABLES:
        want, got = expected.get(table, []), actual.get(table, [])
        if len(want) != len(got):
            counts = Counter(_identity(r) for r in got)
            twice = [k for k, n in counts.items() if n > 1][:3]
            problems.append(f"{table}: {len(got)} rows, expected {len(want)}; repeated: {twice}")
            continue
        for w, g in zip(want, got, strict=True):
            if [c for c, _ in w] != [c for c, _ in g] or not all(
                _close(a, b, rel) for (_, a), (_, b) in zip(w, g, strict=True)
            ):
                diff = [(c, a, b) for (c, a), (_, b) in zip(w, g, strict=False) if not _close(a, b, rel)]
                problems.append(f"{table}: row {_identity(w)[:160]} differs (column, expected, got): {diff}")
    return problems
