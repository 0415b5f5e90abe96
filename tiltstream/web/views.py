"""Building the API's models from ISPyB rows and the live statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tiltstream.web.access import Visit
from tiltstream.web.context import WebContext
from tiltstream.web.downloads import Download, download_path, readable, relion_pipeline_path
from tiltstream.web.files import FileRefusedError
from tiltstream.web.images import volume_depth
from tiltstream.web.models import (
    DownloadView,
    SeriesDetail,
    SeriesSummary,
    SessionView,
    TiltView,
    TomogramView,
    VolumeView,
)
from tiltstream.web.queries import CollectionRow, SeriesRows, blsession, collections, series_rows

__all__ = ["reconstructed_tilts", "series_base", "series_detail", "session_view", "summary"]

_WITH_TOMOGRAM = frozenset({"reconstructed", "denoised"})


def series_base(session: str, name: str) -> str:
    """The API address of a series, under which its images live."""
    return f"/api/sessions/{session}/series/{name}"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # ISPyB's DATETIMEs are naive UTC (the sink writes them so)


def _ispyb_state(row: CollectionRow) -> str:
    if row.denoised:
        return "denoised"
    if row.tomogram is not None and row.tomogram.volumeFile:
        return "reconstructed"
    if row.collection.endTime is not None:
        return "waiting"
    return "acquiring"


def summary(
    session: str,
    name: str,
    status: dict[str, Any] | None,
    row: CollectionRow | None,
    request: dict[str, Any] | None = None,
    reconstruction: dict[str, Any] | None = None,
) -> SeriesSummary:
    """One series' summary: the live status where there is one, ISPyB's counts otherwise.

    The used and excluded counts come from the latest command when there is one, less the tilts its
    ``reconstruction`` (TomogramReconstructed) left out.
    """
    tilt_series_id = f"{session}:{name}"
    version = 0
    if status is not None:
        version = int(status["latest_version"])
        fields: dict[str, Any] = {
            "state": status["state"],
            "expected_tilts": status.get("expected_tilts"),
            "acquired_tilts": status["acquired_tilts"],
            "corrected_tilts": status["corrected_tilts"],
            "ctf_tilts": status["ctf_tilts"],
            "failed_tilts": status["failed_tilts"],
            "excluded_tilts": status["excluded_tilts"],
            "latest_version": version,
            "last_tilt_at": status.get("last_tilt_at"),
            "updated_at": status["metadata"]["occurred_at"],
            "message": status.get("message"),
        }
        if version:
            used = status["acquired_tilts"] - status["excluded_tilts"] - status["failed_tilts"]
            fields["used_tilts"] = max(used, 0)
    elif row is not None:
        fields = {
            "state": _ispyb_state(row),
            "expected_tilts": row.collection.numberOfImages,
            "acquired_tilts": row.movies,
            "corrected_tilts": row.corrected,
            "ctf_tilts": row.ctf,
            "last_tilt_at": _utc(row.last_movie_at),
        }
    else:
        raise ValueError(f"nothing known about {tilt_series_id}")
    if request is not None and int(request["version"]) >= version:
        left_out = sum(not a["included"] for a in reconstructed_tilts(request, reconstruction).values())
        used_count = sum(not tilt["excluded"] for tilt in request["tilts"]) - left_out
        fields.update(used_tilts=used_count, excluded_tilts=len(request["tilts"]) - used_count)
    has_slice = row is not None and row.tomogram is not None and bool(row.tomogram.centralSliceImage)
    if has_slice or fields["state"] in _WITH_TOMOGRAM:
        tag = row.tomogram.tomogramId if row is not None and row.tomogram is not None else 0
        fields["central_slice_url"] = (
            f"{series_base(session, name)}/images/central-slice.png?v={version}-{tag}"
        )
    return SeriesSummary(name=name, tilt_series_id=tilt_series_id, **fields)


def _statuses(ctx: WebContext, session: str) -> dict[str, dict[str, Any]]:
    return ctx.follower.statuses(session) if ctx.follower is not None else {}


def _request(ctx: WebContext, tilt_series_id: str) -> dict[str, Any] | None:
    return ctx.follower.request(tilt_series_id) if ctx.follower is not None else None


def _reconstruction(ctx: WebContext, tilt_series_id: str) -> dict[str, Any] | None:
    return ctx.follower.reconstruction(tilt_series_id) if ctx.follower is not None else None


def reconstructed_tilts(
    request: dict[str, Any] | None, reconstruction: dict[str, Any] | None
) -> dict[int, dict[str, Any]]:
    """The reconstruction of ``request``, tilt by tilt (by number, from 1); empty for another request's."""
    if request is None or reconstruction is None or reconstruction["request_id"] != request["request_id"]:
        return {}
    return {int(a["acquisition_order"]) + 1: a for a in reconstruction["tilt_alignments"]}


def _exclusion(
    command: dict[str, Any] | None, aligned: dict[str, Any] | None, has_tomogram: bool, has_row: bool
) -> tuple[bool | None, str | None]:
    """Whether a tilt was left out of the latest reconstruction and why.

    The command's exclusion first; then the reconstruction's own (the alignment left it out); without
    either, ISPyB's rows: a tomogram without an alignment row for the tilt.
    """
    if command is not None and command["excluded"]:
        return True, command.get("exclusion_reason")
    if aligned is not None and not aligned["included"]:
        return True, aligned.get("exclusion_reason") or "left out by the alignment"
    if command is not None:
        return False, None
    if has_tomogram:
        return (False, None) if has_row else (True, "not in the aligned stack")
    return None, None


def session_view(ctx: WebContext, db: Session, visit: Visit) -> SessionView:
    """Every series of the session: ISPyB's, and those only the status topic knows of yet."""
    found = blsession(db, visit)
    rows = {row.collection.imagePrefix: row for row in collections(db, found.sessionId)} if found else {}
    statuses = {key.removeprefix(f"{visit.session}:"): v for key, v in _statuses(ctx, visit.session).items()}

    def started(name: str) -> tuple[datetime, str]:
        row, status = rows.get(name), statuses.get(name)
        first = _utc(row.collection.startTime) if row is not None else None
        first = first or (status.get("first_tilt_at") if status is not None else None)
        return first or datetime.max.replace(tzinfo=UTC), name

    names = sorted(set(rows) | set(statuses), key=started)  # in the order they were collected
    series = [
        summary(
            visit.session,
            name,
            statuses.get(name),
            rows.get(name),
            _request(ctx, f"{visit.session}:{name}"),
            _reconstruction(ctx, f"{visit.session}:{name}"),
        )
        for name in names
    ]
    return SessionView(
        session=visit.session,
        microscope=found.beamLineName if found is not None else None,
        series=series,
        live=ctx.follower is not None,
    )


def _url(base: str, path: str | None, address: str) -> str | None:
    return f"{base}/{address}" if path else None


def _downloads(ctx: WebContext, rows: SeriesRows, base: str, tag: str) -> list[DownloadView]:
    """The series' files that exist now and may be served."""
    found = []
    for kind in Download:
        local = readable(ctx.files, download_path(rows, kind))
        if local is not None:
            url = f"{base}/downloads/{kind.value}{tag}"
            found.append(
                DownloadView(kind=kind.value, file_name=local.name, size_bytes=local.stat().st_size, url=url)
            )
    return found


def _relion_url(ctx: WebContext, session: str, rows: SeriesRows, base: str) -> str | None:
    volume = rows.row.tomogram.volumeFile if rows.row.tomogram is not None else None
    pipeline = readable(ctx.files, relion_pipeline_path(session, volume))
    return f"{base}/relion.zip" if pipeline is not None else None


def _half_tomograms(ctx: WebContext, rows: SeriesRows, tilt_series_id: str) -> dict[str, Any]:
    """The resolution estimate of the tomogram ISPyB holds, from the reconstruction's event (ISPyB's
    Tomogram has no column for it); nothing when the follower's newest is another version."""
    found = _reconstruction(ctx, tilt_series_id)
    if found is None or rows.version is None or int(found["version"]) != rows.version:
        return {}
    return {k: found[k] for k in ("fsc_resolution_angstroms", "half_tomograms_from")}


def _tomogram(
    ctx: WebContext, rows: SeriesRows, base: str, session: str, tilt_series_id: str
) -> TomogramView | None:
    tomogram = rows.row.tomogram
    if tomogram is None:
        return None
    tag = f"?v={rows.version or 0}-{tomogram.tomogramId}"
    volumes = []
    for kind, path in (("raw", tomogram.volumeFile), ("denoised", rows.processed.get("Denoised"))):
        try:
            depth = volume_depth(ctx.files.resolve(path))
        except (FileRefusedError, OSError, ValueError):
            continue
        volumes.append(
            VolumeView(
                kind=kind, depth=depth, slice_url_template=f"{base}/volumes/{kind}/slices/{{z}}.png{tag}"
            )
        )
    return TomogramView(
        version=rows.version,
        size_x_pixels=tomogram.sizeX,
        size_y_pixels=tomogram.sizeY,
        size_z_pixels=tomogram.sizeZ,
        pixel_spacing_angstroms=tomogram.pixelSpacing,
        tilt_angle_offset_degrees=tomogram.tiltAngleOffset,
        global_alignment_quality=tomogram.globalAlignmentQuality,
        **_half_tomograms(ctx, rows, tilt_series_id),
        central_slice_url=_url(base, tomogram.centralSliceImage, f"images/central-slice.png{tag}"),
        xy_projection_url=_url(base, tomogram.projXY, f"images/xy-projection.png{tag}"),
        xz_projection_url=_url(base, tomogram.projXZ, f"images/xz-projection.png{tag}"),
        alignment_plot_url=_url(base, tomogram.xyShiftPlot, f"images/alignment-plot.png{tag}"),
        volumes=volumes,
        downloads=_downloads(ctx, rows, base, tag),
        relion_project_url=_relion_url(ctx, session, rows, base),
    )


def series_detail(ctx: WebContext, db: Session, visit: Visit, name: str) -> SeriesDetail | None:
    """The tilt-series page's data, or ``None`` when ISPyB has no such series in the session."""
    found = blsession(db, visit)
    rows = series_rows(db, found.sessionId, name) if found is not None else None
    if rows is None:
        return None
    tilt_series_id = f"{visit.session}:{name}"
    request = _request(ctx, tilt_series_id)
    status = ctx.follower.status(tilt_series_id) if ctx.follower is not None else None
    base = series_base(visit.session, name)
    commanded = {int(t["acquisition_order"]) + 1: t for t in request["tilts"]} if request else {}
    reconstructed = reconstructed_tilts(request, _reconstruction(ctx, tilt_series_id))
    tilts = []
    for tilt in rows.tilts:
        movie, motion, ctf = tilt.movie, tilt.motion, tilt.ctf
        number = int(movie.movieNumber)
        aligned = reconstructed.get(number)
        excluded, reason = _exclusion(
            commanded.get(number), aligned, rows.row.tomogram is not None, tilt.alignment is not None
        )
        residual_nm = tilt.alignment.residualError if tilt.alignment is not None else None
        tilt_base = f"{base}/tilts/{number}"
        tilts.append(
            TiltView(
                number=number,
                tilt_angle_degrees=movie.angle,
                acquired_at=_utc(movie.createdTimeStamp),
                total_motion_angstroms=motion.totalMotion if motion else None,
                average_motion_per_frame_angstroms=motion.averageMotionPerFrame if motion else None,
                defocus_micrometres=ctf.estimatedDefocus / 1e4 if ctf and ctf.estimatedDefocus else None,
                astigmatism_angstroms=ctf.astigmatism if ctf else None,
                fit_resolution_angstroms=ctf.estimatedResolution if ctf else None,
                fit_score=ctf.ccValue if ctf else None,
                refined_tilt_angle_degrees=tilt.alignment.refinedTiltAngle if tilt.alignment else None,
                alignment_residual_angstroms=None if residual_nm is None else 10.0 * residual_nm,
                alignment_correlation=None if aligned is None else aligned.get("neighbour_correlation"),
                excluded=excluded,
                exclusion_reason=reason,
                micrograph_url=_url(
                    tilt_base, motion and motion.micrographSnapshotFullPath, "micrograph.png"
                ),
                power_spectrum_url=_url(tilt_base, ctf and ctf.fftTheoreticalFullPath, "power-spectrum.png"),
                drift_plot_url=_url(tilt_base, motion and motion.driftPlotFullPath, "drift-plot.png"),
            )
        )
    return SeriesDetail(
        session=visit.session,
        summary=summary(visit.session, name, status, rows.row, request, _reconstruction(ctx, tilt_series_id)),
        tilts=tilts,
        ctf_plot_url=f"{base}/ctf.svg",
        tomogram=_tomogram(ctx, rows, base, visit.session, tilt_series_id),
    )
