"""Read access per session: a token per session or proposal, from a header, a cookie or one query.

A request names its session in the path. The token is taken from ``Authorization: Bearer``, from the
session's cookie, or from ``?token=`` (which then sets that cookie, so that the address can be shared
once and the browser's EventSource, which sends no headers, still gets in). No token: 401; a wrong one,
or a session that has no token configured: 403.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response, status
from pydantic import SecretStr

__all__ = ["Visit", "check_access", "cookie_name", "parse_visit"]


@dataclass(frozen=True)
class Visit:
    """A session id taken apart: ``cm40000-1`` is proposal ``cm`` ``40000``, visit ``1``."""

    session: str
    code: str
    number: str
    visit_number: int

    @property
    def proposal(self) -> str:
        """``cm40000``."""
        return f"{self.code}{self.number}"


def parse_visit(session: str, pattern: str) -> Visit | None:
    """``session`` as a :class:`Visit`, or ``None`` when it does not match ``pattern`` whole."""
    match = re.fullmatch(pattern, session)
    if match is None:
        return None
    return Visit(session, match["code"], match["number"], int(match["visit"]))


def cookie_name(session: str) -> str:
    """The cookie that holds ``session``'s token (session ids are cookie-name safe once parsed)."""
    return f"tiltstream_{re.sub(r'[^A-Za-z0-9_-]', '_', session)}"


def _presented(request: Request, session: str) -> tuple[str | None, bool]:
    """The token the request carries and whether it came from the query string."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    query = request.query_params.get("token")
    if query:
        return query, True
    return request.cookies.get(cookie_name(session)), False


def check_access(
    request: Request,
    response: Response | None,
    visit: Visit,
    tokens: dict[str, SecretStr],
    *,
    secure_cookies: bool = False,
) -> None:
    """Raise 401/403 unless the request carries ``visit``'s token; set the cookie for a query token.

    Raises
    ------
    fastapi.HTTPException
        401 without a token, 403 with a wrong one or for a session that has no token configured.
    """
    expected = [t for key in (visit.session, visit.proposal) if (t := tokens.get(key)) is not None]
    token, from_query = _presented(request, visit.session)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"session {visit.session} needs its token (Authorization: Bearer, or ?token= once)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = token.encode()
    if not any(hmac.compare_digest(given, secret.get_secret_value().encode()) for secret in expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token does not open session {visit.session}")
    if from_query and response is not None:
        response.set_cookie(
            cookie_name(visit.session),
            token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            path="/",
        )
