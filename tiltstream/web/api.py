"""The JSON API behind every page, and the images the pages show.

Every route names its session in the path and needs that session's token. Files are looked up by what
they are (``tilts/3/power-spectrum.png``), never by a path from the request; the path recorded in ISPyB is
then checked to lie inside the data roots before anything is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse

from tiltstream.log import get_logger
from tiltstream.web.access import Visit
from tiltstream.web.context import WebContext, authorised, context
from tiltstream.web.downloads import Download, download_path, relion_archive, relion_pipeline_path
from tiltstream.web.failures import dead_letter_failures, program_failures, status_failures
from tiltstream.web.files import FileRefusedError
from tiltstream.web.images import ctf_plot_svg
from tiltstream.web.models import Failure, SeriesDetail, SessionView
from tiltstream.web.queries import SeriesRows, blsession, failed_programs, series_rows, tilt_row
from tiltstream.web.views import series_detail, session_view, summary

__all__ = ["SERIES_NAME", "SeriesImage", "TiltImage", "VolumeKind", "router"]

_log = get_logger(__name__)

#: A series name as the pipeline makes them (an mdoc's stem): no slashes, no leading dot.
SERIES_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$"

router = APIRouter(prefix="/api", tags=["api"])

Ctx = Annotated[WebContext, Depends(context)]
Authorised = Annotated[Visit, Depends(authorised)]
Name = Annotated[str, Path(pattern=SERIES_NAME, description="The series' name, e.g. Position_1.")]


class TiltImage(StrEnum):
    """Per-tilt images."""

    MICROGRAPH = "micrograph"
    POWER_SPECTRUM = "power-spectrum"
    DRIFT_PLOT = "drift-plot"


class SeriesImage(StrEnum):
    """Per-tomogram images written by the reconstruction."""

    CENTRAL_SLICE = "central-slice"
    XY_PROJECTION = "xy-projection"
    XZ_PROJECTION = "xz-projection"
    ALIGNMENT_PLOT = "alignment-plot"


class VolumeKind(StrEnum):
    """Volumes that can be browsed slice by slice."""

    RAW = "raw"
    DENOISED = "denoised"


_PRIVATE = {"Cache-Control": "private, max-age=300"}


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what}")


def _file(ctx: WebContext, path: str | None, what: str) -> FileResponse:
    try:
        local = ctx.files.resolve(path)
    except FileRefusedError as error:
        if path:
            _log.info("file refused", what=what, reason=str(error))
        raise _not_found(what) from error
    return FileResponse(local, headers=_PRIVATE)


def _session_id(ctx: WebContext, visit: Visit) -> int:
    with ctx.database() as db:
        found = blsession(db, visit)
    if found is None:
        raise _not_found(f"session {visit.session} in ISPyB")
    return int(found.sessionId)


@router.get("/sessions/{session}", response_model=SessionView, summary="A session's tilt series")
def get_session(ctx: Ctx, visit: Authorised) -> SessionView:
    """Every tilt series of the session with its state and counts (ISPyB merged with the live status)."""
    with ctx.database() as db:
        return session_view(ctx, db, visit)


@router.get(
    "/sessions/{session}/events",
    summary="Live status updates (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`status` events: SeriesSummary"}},
)
async def session_events(request: Request, ctx: Ctx, visit: Authorised) -> StreamingResponse:
    """A ``text/event-stream`` of ``status`` events, each a SeriesSummary as JSON: first every series'
    current status, then each change as the status topic receives it."""
    follower = ctx.follower
    if follower is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the status topic is not followed")
    subscription = follower.subscribe(visit.session, asyncio.get_running_loop())

    def encode(value: dict[str, Any]) -> str:
        key = str(value["metadata"]["tilt_series_id"])
        name = key.removeprefix(f"{visit.session}:")
        made = summary(visit.session, name, value, None, follower.request(key), follower.reconstruction(key))
        data = made.model_dump_json()
        return f"event: status\ndata: {data}\n\n"

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            for value in follower.statuses(visit.session).values():
                yield encode(value)
            idle = 0.0
            while not ctx.closing and not await request.is_disconnected():
                try:
                    value = await asyncio.wait_for(subscription.queue.get(), timeout=1.0)
                except TimeoutError:
                    idle += 1.0
                    if idle >= 15:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                idle = 0.0
                yield encode(value)
        finally:
            follower.unsubscribe(subscription)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/sessions/{session}/series/{name}", response_model=SeriesDetail, summary="One tilt series")
def get_series(ctx: Ctx, visit: Authorised, name: Name) -> SeriesDetail:
    """Per tilt: motion, CTF, previews and exclusion; the current tomogram with its previews and volumes."""
    with ctx.database() as db:
        detail = series_detail(ctx, db, visit, name)
    if detail is None:
        raise _not_found(f"tilt series {name} in session {visit.session}")
    return detail


@router.get(
    "/sessions/{session}/series/{name}/tilts/{number}/{kind}.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
    summary="A tilt's micrograph, power spectrum or drift plot",
)
def tilt_image(
    ctx: Ctx, visit: Authorised, name: Name, number: Annotated[int, Path(ge=1, le=100_000)], kind: TiltImage
) -> FileResponse:
    """The PNG the motion correction or CTF estimation wrote for tilt ``number`` (from 1)."""
    session_id = _session_id(ctx, visit)
    with ctx.database() as db:
        row = tilt_row(db, session_id, name, number)
    if row is None:
        raise _not_found(f"tilt {number} of {name}")
    motion, ctf = row.motion, row.ctf
    paths = {
        TiltImage.MICROGRAPH: motion.micrographSnapshotFullPath if motion else None,
        TiltImage.POWER_SPECTRUM: ctf.fftTheoreticalFullPath if ctf else None,
        TiltImage.DRIFT_PLOT: motion.driftPlotFullPath if motion else None,
    }
    return _file(ctx, paths[kind], f"{kind} of tilt {number}")


@router.get(
    "/sessions/{session}/series/{name}/images/{kind}.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
    summary="A tomogram preview",
)
def series_image(ctx: Ctx, visit: Authorised, name: Name, kind: SeriesImage) -> FileResponse:
    """The central slice, XY or XZ projection, or alignment plot of the current tomogram."""
    session_id = _session_id(ctx, visit)
    with ctx.database() as db:
        rows = series_rows(db, session_id, name)
    tomogram = rows.row.tomogram if rows is not None else None
    if tomogram is None:
        raise _not_found(f"tomogram of {name}")
    paths = {
        SeriesImage.CENTRAL_SLICE: tomogram.centralSliceImage,
        SeriesImage.XY_PROJECTION: tomogram.projXY,
        SeriesImage.XZ_PROJECTION: tomogram.projXZ,
        SeriesImage.ALIGNMENT_PLOT: tomogram.xyShiftPlot,
    }
    return _file(ctx, paths[kind], f"{kind} of {name}")


@router.get(
    "/sessions/{session}/series/{name}/volumes/{kind}/slices/{z}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="One z slice of the raw or denoised tomogram",
)
def volume_slice(
    ctx: Ctx, visit: Authorised, name: Name, kind: VolumeKind, z: Annotated[int, Path(ge=0, le=100_000)]
) -> Response:
    """Slice ``z`` of the current tomogram (``raw``) or its denoised version, as PNG."""
    session_id = _session_id(ctx, visit)
    with ctx.database() as db:
        rows = series_rows(db, session_id, name)
    if rows is None or rows.row.tomogram is None:
        raise _not_found(f"tomogram of {name}")
    path = rows.row.tomogram.volumeFile if kind is VolumeKind.RAW else rows.processed.get("Denoised")
    try:
        png = ctx.renderer.slice_png(ctx.files.resolve(path), z)
    except (FileRefusedError, IndexError) as error:
        raise _not_found(f"slice {z} of the {kind} tomogram of {name}") from error
    return Response(png, media_type="image/png", headers=_PRIVATE)


def _current_rows(ctx: WebContext, visit: Visit, name: str) -> SeriesRows:
    """The series' rows; 404 when it has no tomogram yet."""
    session_id = _session_id(ctx, visit)
    with ctx.database() as db:
        rows = series_rows(db, session_id, name)
    if rows is None or rows.row.tomogram is None:
        raise _not_found(f"tomogram of {name}")
    return rows


@router.get(
    "/sessions/{session}/series/{name}/downloads/{kind}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="A file of the current tomogram, to save",
)
def download(ctx: Ctx, visit: Authorised, name: Name, kind: Download) -> FileResponse:
    """The tomogram, its denoised version, the aligned stack, or its IMOD/AreTomo alignment files."""
    rows = _current_rows(ctx, visit, name)
    path = download_path(rows, kind)
    try:
        local = ctx.files.resolve(path)
    except FileRefusedError as error:
        raise _not_found(f"{kind.value} of {name}") from error
    return FileResponse(
        local,
        filename=local.name,
        media_type="application/octet-stream",
        headers={"Cache-Control": "private"},
    )


@router.get(
    "/sessions/{session}/series/{name}/relion.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    summary="The session's RELION 5 project (its star files), as a zip",
)
async def relion_project(ctx: Ctx, visit: Authorised, name: Name) -> Response:
    """Every star file of the session's RELION 5 project that this series' tomogram belongs to."""
    rows = await run_in_threadpool(_current_rows, ctx, visit, name)
    volume = rows.row.tomogram.volumeFile if rows.row.tomogram is not None else None
    folder = f"{visit.session}_relion"
    try:
        pipeline = ctx.files.resolve(relion_pipeline_path(visit.session, volume))
        archive = await run_in_threadpool(relion_archive, ctx.files, pipeline, folder)
    except FileRefusedError as error:
        _log.info("RELION project refused", series=name, reason=str(error))
        raise _not_found(f"RELION project of {visit.session}") from error
    disposition = {"Content-Disposition": f'attachment; filename="{folder}.zip"', "Cache-Control": "no-store"}
    return Response(archive, media_type="application/zip", headers=disposition)


@router.get(
    "/sessions/{session}/series/{name}/ctf.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="Defocus and CTF fit resolution against tilt angle",
)
def ctf_plot(ctx: Ctx, visit: Authorised, name: Name) -> Response:
    """An SVG plot of every tilt's mean defocus (µm) and fit resolution (Å) against its tilt angle."""
    session_id = _session_id(ctx, visit)
    with ctx.database() as db:
        rows = series_rows(db, session_id, name)
    if rows is None:
        raise _not_found(f"tilt series {name}")
    points = [t for t in rows.tilts if t.ctf is not None and t.movie.angle is not None]
    svg = ctf_plot_svg(
        [float(t.movie.angle) for t in points],
        [t.ctf.estimatedDefocus / 1e4 if t.ctf and t.ctf.estimatedDefocus else None for t in points],
        [t.ctf.estimatedResolution if t.ctf else None for t in points],
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def session_failures(ctx: WebContext, visit: Visit) -> list[Failure]:
    """What failed in the session, from ISPyB, the status topic and the dead-letter topics."""
    with ctx.database() as db:
        found = blsession(db, visit)
        programs = failed_programs(db, found.sessionId) if found is not None else []
    failures = program_failures(visit.session, programs)
    statuses = ctx.follower.statuses(visit.session) if ctx.follower is not None else {}
    failures += status_failures(visit.session, statuses, {f.series for f in failures if f.series})
    if ctx.settings.follow_status:
        try:
            failures += dead_letter_failures(ctx.settings.kafka, ctx.catalogue, visit.session)
        except Exception as error:  # the broker away: show what ISPyB knows
            _log.warning("dead letters unreadable", error=str(error))
    return failures


@router.get(
    "/sessions/{session}/failures", response_model=list[Failure], summary="What failed, and what to run"
)
async def get_failures(ctx: Ctx, visit: Authorised) -> list[Failure]:
    """Failed stages, failed series and dead letters of the session, each with the operator's command."""
    return await run_in_threadpool(session_failures, ctx, visit)
