"""Usage-statistics pages: the facility's per microscope (staff token), a session's own (its token).

``/stats`` (``?microscope=``, ``?since=``) needs ``TILTSTREAM_WEB_STATS_TOKEN`` (Bearer, or ``?token=``
once, which sets a cookie); ``/sessions/{session}/stats`` needs that session's token. Each page shows the
tables of :mod:`tiltstream.stats` and a plot of tomograms per day, an SVG drawn here from the same rows.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from tiltstream.stats.aggregate import UsageStats
from tiltstream.stats.render import TITLES, tomograms_per_day_svg, waiting
from tiltstream.stats.usage import usage_stats
from tiltstream.web.access import Visit, check_access
from tiltstream.web.api import _session_id
from tiltstream.web.context import WebContext, authorised, context
from tiltstream.web.pages import _keep_cookie, _page

__all__ = ["router", "staff"]

router = APIRouter(include_in_schema=False)

Ctx = Annotated[WebContext, Depends(context)]
Authorised = Annotated[Visit, Depends(authorised)]
_STAFF = Visit("stats", "stats", "", 0)  # the staff token's cookie and key


def staff(request: Request, response: Response) -> None:
    """FastAPI dependency: the request carries the statistics token (404 when none is configured)."""
    token = context(request).settings.stats_token
    if token is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "facility statistics are off (TILTSTREAM_WEB_STATS_TOKEN)"
        )
    secure = context(request).settings.secure_cookies
    check_access(request, response, _STAFF, {"stats": token}, secure_cookies=secure)


Staff = Annotated[None, Depends(staff)]


def _since(since: str | None) -> date | None:
    if not since:
        return None
    try:
        return date.fromisoformat(since)
    except ValueError:
        raise HTTPException(422, f"{since!r} is not a day (YYYY-MM-DD)") from None


def _view(request: Request, stats: UsageStats, plot: str, **values: object) -> Response:
    groups = [(TITLES["total"], "", stats.total)] + [
        (TITLES[name], name.replace("_", " "), rows) for name, rows in stats.by.items()
    ]
    return _page(request, "stats.html", groups=groups, waiting=waiting, plot=plot, **values)


@router.get("/stats", response_class=HTMLResponse)
def facility_stats(
    request: Request,
    response: Response,
    ctx: Ctx,
    _: Staff,
    microscope: Annotated[str | None, Query(max_length=45)] = None,
    since: str | None = None,
) -> Response:
    """Series, tomograms, movies, failures and waiting time per microscope, day, session type, session."""
    day = _since(since)
    stats = usage_stats(ctx.engine, since=day, microscope=microscope or None)
    query = urlencode([(k, v) for k, v in (("microscope", microscope), ("since", since)) if v])
    plot = "/stats/tomograms.svg" + (f"?{query}" if query else "")
    page = _view(request, stats, plot, microscope=microscope, since=since)
    return _keep_cookie(page, response)


@router.get("/stats/tomograms.svg")
def facility_plot(
    ctx: Ctx,
    _: Staff,
    microscope: Annotated[str | None, Query(max_length=45)] = None,
    since: str | None = None,
) -> Response:
    """Tomograms reconstructed per day, one bar colour per microscope."""
    stats = usage_stats(ctx.engine, since=_since(since), microscope=microscope or None)
    return Response(tomograms_per_day_svg(stats.by["day"]), media_type="image/svg+xml", headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/sessions/{session}/stats", response_class=HTMLResponse)
def session_stats(request: Request, response: Response, ctx: Ctx, visit: Authorised) -> Response:
    """The same statistics for one session."""
    stats = usage_stats(ctx.engine, session_id=_session_id(ctx, visit))
    page = _view(request, stats, f"/sessions/{visit.session}/stats.svg", session=visit.session)
    return _keep_cookie(page, response)


@router.get("/sessions/{session}/stats.svg")
def session_plot(ctx: Ctx, visit: Authorised) -> Response:
    """Tomograms reconstructed per day in one session."""
    stats = usage_stats(ctx.engine, session_id=_session_id(ctx, visit))
    title = f"tomograms reconstructed per day, {visit.session}"
    return Response(
        tomograms_per_day_svg(stats.by["day"], title), media_type="image/svg+xml", headers=_NO_STORE
    )
