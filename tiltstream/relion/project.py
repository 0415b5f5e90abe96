"""Writing a session's RELION 5 tomography project, one tilt series at a time.

Layout (the jobs RELION 5's tomography pipeline makes, numbered as eBIC's live processing numbers them)::

    <session>/relion/
        default_pipeline.star
        Import/job001/tilt_series.star               + tilt_series/<name>.star
        MotionCorr/job002/corrected_tilt_series.star + tilt_series/<name>.star
        CtfFind/job003/tilt_series_ctf.star          + tilt_series/<name>.star
        ExcludeTiltImages/job004/selected_tilt_series.star + tilt_series/<name>.star
        AlignTiltSeries/job005/aligned_tilt_series.star    + tilt_series/<name>.star
        Tomograms/job006/tomograms.star

Every file is written whole with ``starfile`` through :func:`~tiltstream.processors.runtime.atomic.
atomic_path`, so a reader never sees half a star file. The per-series stars are replaced, never
appended to; the session-wide stars are rebuilt from one small record per series
(``.tiltstream/<name>.json``), under a lock, so a replayed request or a version 2 rewrites its rows
and concurrent reconstructions never lose each other's series. An older version arriving after a newer
one is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import starfile

from tiltstream.processors.runtime.atomic import atomic_path
from tiltstream.processors.runtime.output_paths import folder_name
from tiltstream.relion.tables import SeriesTables

__all__ = ["JOBS", "PIPELINE_STAR", "TOMOGRAMS_JOB", "relion_project_folder", "write_series"]

PIPELINE_STAR = "default_pipeline.star"

#: (job folder, global star, process type label, node type label, table attribute)
JOBS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Import/job001", "tilt_series.star", "relion.importtomo", "tomo.import", "imported"),
    (
        "MotionCorr/job002",
        "corrected_tilt_series.star",
        "relion.motioncorr.own",
        "tomo.motioncorr",
        "corrected",
    ),
    ("CtfFind/job003", "tilt_series_ctf.star", "relion.ctffind.ctffind4", "tomo.ctffind", "ctf"),
    (
        "ExcludeTiltImages/job004",
        "selected_tilt_series.star",
        "relion.excludetilts",
        "tomo.excludeimages",
        "selected",
    ),
    (
        "AlignTiltSeries/job005",
        "aligned_tilt_series.star",
        "relion.aligntiltseries",
        "tomo.aligntiltseries",
        "aligned",
    ),
)
TOMOGRAMS_JOB = ("Tomograms/job006", "tomograms.star", "relion.reconstructtomograms", "tomo.reconstruct")
_RECORDS = ".tiltstream"


def relion_project_folder(session_id: str) -> str:
    """``<session>/relion``: the project's folder under the output root."""
    return f"{folder_name(session_id)}/relion"


def _write_star(path: Path, blocks: dict[str, pd.DataFrame | dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        starfile.write(blocks, temporary, overwrite=True)


@contextlib.contextmanager
def _locked(project: Path) -> Iterator[None]:
    folder = project / _RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _records(project: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((project / _RECORDS).glob("*.json")):
        found.append(json.loads(path.read_text()))
    return found


def _write_record(project: Path, tables: SeriesTables) -> bool:
    """Store the series' session-wide rows; False when a newer version is already there."""
    path = project / _RECORDS / f"{tables.name}.json"
    if path.exists() and int(json.loads(path.read_text())["version"]) > tables.version:
        return False
    record = {
        "name": tables.name,
        "version": tables.version,
        "optics": tables.optics,
        "tomogram": tables.tomogram,
    }
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, sort_keys=True))
    return True


def _global_frame(records: list[dict[str, Any]], job: str) -> pd.DataFrame:
    rows = [
        {"rlnTomoName": r["name"]}
        | r["optics"]
        | {"rlnTomoTiltSeriesStarFile": f"{job}/tilt_series/{r['name']}.star"}
        for r in records
    ]
    return pd.DataFrame(rows)


def _tomograms_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    align_job = JOBS[-1][0]
    rows = [
        {"rlnTomoName": r["name"]}
        | r["optics"]
        | {"rlnTomoTiltSeriesStarFile": f"{align_job}/tilt_series/{r['name']}.star"}
        | r["tomogram"]
        for r in records
    ]
    # a column RELION reads for every tomogram (the half tomograms) only where every one has it
    return pd.DataFrame(rows).dropna(axis="columns")


def _pipeline(job_count: int) -> dict[str, pd.DataFrame | dict[str, Any]]:
    """``default_pipeline.star``: the processes, their output nodes and the edges between them."""
    jobs = [(j[0], j[1], j[2], j[3]) for j in JOBS] + [TOMOGRAMS_JOB]
    processes = pd.DataFrame(
        {
            "rlnPipeLineProcessName": [f"{j[0]}/" for j in jobs],
            "rlnPipeLineProcessAlias": ["None"] * len(jobs),
            "rlnPipeLineProcessTypeLabel": [j[2] for j in jobs],
            "rlnPipeLineProcessStatusLabel": ["Running"] * len(jobs),
        }
    )
    nodes = [f"{j[0]}/{j[1]}" for j in jobs]
    return {
        "pipeline_general": {"rlnPipeLineJobCounter": job_count},
        "pipeline_processes": processes,
        "pipeline_nodes": pd.DataFrame(
            {
                "rlnPipeLineNodeName": nodes,
                "rlnPipeLineNodeTypeLabel": [f"TomogramGroupMetadata.star.relion.{j[3]}" for j in jobs],
                "rlnPipeLineNodeTypeLabelDepth": [1] * len(jobs),
            }
        ),
        "pipeline_input_edges": pd.DataFrame(
            {"rlnPipeLineEdgeFromNode": nodes[:-1], "rlnPipeLineEdgeProcess": [f"{j[0]}/" for j in jobs[1:]]}
        ),
        "pipeline_output_edges": pd.DataFrame(
            {"rlnPipeLineEdgeProcess": [f"{j[0]}/" for j in jobs], "rlnPipeLineEdgeToNode": nodes}
        ),
    }


def write_series(project: Path, tables: SeriesTables) -> bool:
    """Write (or rewrite) one series' stars and rebuild the session-wide ones.

    Returns
    -------
    bool
        False when the project already holds a newer version of the series (nothing written).
    """
    with _locked(project):
        if not _write_record(project, tables):
            return False
        for job, _, _, _, attribute in JOBS:
            frame: pd.DataFrame = getattr(tables, attribute)
            _write_star(project / job / "tilt_series" / f"{tables.name}.star", {tables.name: frame})
        records = _records(project)
        for job, star, _, _, _ in JOBS:
            _write_star(project / job / star, {"global": _global_frame(records, job)})
        _write_star(project / TOMOGRAMS_JOB[0] / TOMOGRAMS_JOB[1], {"global": _tomograms_frame(records)})
        _write_star(project / PIPELINE_STAR, _pipeline(len(JOBS) + 2))
    return True
