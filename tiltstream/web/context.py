"""What every request handler shares: settings, the database, the data roots, the live follower."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response, status
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tiltstream.connectors.ispyb.probe import probe_schema
from tiltstream.connectors.ispyb.rows import Rows
from tiltstream.streams.catalogue import Catalogue
from tiltstream.web.access import Visit, check_access, parse_visit
from tiltstream.web.files import DataFiles
from tiltstream.web.images import SliceRenderer
from tiltstream.web.live import StatusFollower
from tiltstream.web.settings import WebSettings

__all__ = ["WebContext", "authorised", "context"]


@dataclass
class WebContext:
    """The application's shared state (one per :func:`~tiltstream.web.app.create_app`)."""

    settings: WebSettings
    engine: Engine
    files: DataFiles
    renderer: SliceRenderer
    catalogue: Catalogue
    follower: StatusFollower | None
    closing: bool = False
    rows: Rows | None = None

    @contextmanager
    def database(self) -> Iterator[Session]:
        """A read-only unit of work on ISPyB (leaving out columns this schema version lacks)."""
        if self.rows is None:
            self.rows = Rows(probe_schema(self.engine, require=False))
        with Session(self.engine) as db:
            yield self.rows.watch(db)


def context(request: Request) -> WebContext:
    """The :class:`WebContext` of the application serving ``request``."""
    found: WebContext = request.app.state.context
    return found


def authorised(request: Request, response: Response, session: str) -> Visit:
    """FastAPI dependency: the path's session, once the request's token opens it.

    Raises
    ------
    fastapi.HTTPException
        404 for a session id that is not a visit, 401/403 as :func:`check_access`.
    """
    ctx = context(request)
    visit = parse_visit(session, ctx.settings.visit_pattern)
    if visit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such session")
    check_access(request, response, visit, ctx.settings.tokens, secure_cookies=ctx.settings.secure_cookies)
    return visit
