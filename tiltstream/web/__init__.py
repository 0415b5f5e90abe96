"""The live web view of a session's processing (``tiltstream web``): FastAPI, ISPyB, the status topic."""

from __future__ import annotations

from tiltstream.web.app import create_app
from tiltstream.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]
