"""The HTML pages: server-rendered shells whose data comes from the JSON API (and live events)."""

from __future__ import annotations

import re
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tiltstream.web.access import Visit
from tiltstream.web.api import SERIES_NAME, session_failures
from tiltstream.web.context import WebContext, authorised, context

__all__ = ["TEMPLATES", "router"]

TEMPLATES = Jinja2Templates(directory=FilePath(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)

Ctx = Annotated[WebContext, Depends(context)]
Authorised = Annotated[Visit, Depends(authorised)]


def _page(request: Request, template: str, **values: object) -> Response:
    """Render ``template``; a ``?token=`` is dropped from the address once its cookie is set."""
    if "token" in request.query_params:
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        return RedirectResponse(target, status_code=303)
    return TEMPLATES.TemplateResponse(request, template, values, headers={"Cache-Control": "no-store"})


def _keep_cookie(page: Response, dependency_response: Response) -> Response:
    for key, value in dependency_response.headers.items():
        if key == "set-cookie":
            page.headers.append(key, value)
    return page


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Response:
    """How to open a session."""
    return TEMPLATES.TemplateResponse(request, "index.html", {})


@router.get("/sessions/{session}", response_class=HTMLResponse)
def session_page(request: Request, response: Response, visit: Authorised) -> Response:
    """Every tilt series of a session, updated live."""
    return _keep_cookie(_page(request, "session.html", session=visit.session), response)


@router.get("/sessions/{session}/series/{name}", response_class=HTMLResponse)
def series_page(request: Request, response: Response, visit: Authorised, name: str) -> Response:
    """One tilt series: per-tilt results, CTF against tilt angle, alignment and the tomogram."""
    if not re.fullmatch(SERIES_NAME, name):
        return HTMLResponse("no such tilt series", status_code=404)
    return _keep_cookie(_page(request, "series.html", session=visit.session, name=name), response)


@router.get("/sessions/{session}/failures", response_class=HTMLResponse)
def failures_page(request: Request, response: Response, ctx: Ctx, visit: Authorised) -> Response:
    """What failed, why, and the command to run."""
    failures = session_failures(ctx, visit) if "token" not in request.query_params else []
    page = _page(request, "failures.html", session=visit.session, failures=failures)
    return _keep_cookie(page, response)
