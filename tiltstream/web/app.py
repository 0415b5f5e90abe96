"""The web view's FastAPI application: :func:`create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from tiltstream import __version__
from tiltstream.connectors.ispyb.sink import create_engine
from tiltstream.log import get_logger
from tiltstream.streams.catalogue import Catalogue
from tiltstream.web import api, pages, stats
from tiltstream.web.context import WebContext
from tiltstream.web.files import DataFiles
from tiltstream.web.images import SliceRenderer
from tiltstream.web.live import StatusFollower
from tiltstream.web.settings import WebSettings

__all__ = ["create_app"]

_log = get_logger(__name__)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if _wants_html(request):
        body = (
            f"<!doctype html><title>{error.status_code}</title>"
            f"<link rel=stylesheet href='/static/tiltstream.css'><main><h1>{error.status_code}</h1>"
            f"<p>{escape(str(error.detail))}</p></main>"
        )
        return HTMLResponse(body, status_code=error.status_code, headers=error.headers)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """Build the web view on ``settings`` (``TILTSTREAM_WEB_*`` when omitted).

    The status topic is followed from start-up to shutdown (unless ``follow_status`` is off); the
    database engine is made here and disposed at shutdown.
    """
    settings = settings or WebSettings()
    catalogue = Catalogue(settings.topics)
    ctx = WebContext(
        settings=settings,
        engine=create_engine(settings.database_url.get_secret_value()),
        files=DataFiles(settings.roots),
        renderer=SliceRenderer(settings.slice_max_pixels, settings.slice_cache_entries),
        catalogue=catalogue,
        follower=StatusFollower(settings.kafka, catalogue) if settings.follow_status else None,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ctx.follower is not None:
            ctx.follower.start()
        if not settings.tokens:
            _log.warning("no session tokens configured (TILTSTREAM_WEB_TOKENS): every session is refused")
        try:
            yield
        finally:
            ctx.closing = True
            if ctx.follower is not None:
                ctx.follower.stop()
            ctx.engine.dispose()

    app = FastAPI(
        title="tiltstream web view",
        version=__version__,
        description="A session's live cryo-ET processing: tilt series, per-tilt results, tomograms, "
        "failures. Every `/api/sessions/{session}/…` route needs that session's token "
        "(`Authorization: Bearer`, or `?token=` once, which sets a cookie).",
        lifespan=lifespan,
    )
    app.state.context = ctx

    @app.middleware("http")
    async def hardened(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")  # tokens never travel in a Referer
        return response

    app.add_exception_handler(HTTPException, _http_error)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(stats.router)
    return app
