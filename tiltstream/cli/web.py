"""``tiltstream web``: the live web view of a session's processing."""

from __future__ import annotations

import typer

from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``web`` command."""
    app = typer.Typer()

    @app.command("web")
    def web(
        host: str | None = typer.Option(None, "--host", help="Address to listen on (TILTSTREAM_WEB_HOST)."),
        port: int | None = typer.Option(None, "--port", help="Port (TILTSTREAM_WEB_PORT)."),
        url: str | None = typer.Option(
            None, "--url", help="ISPyB's SQLAlchemy URL (TILTSTREAM_WEB_DATABASE_URL)."
        ),
    ) -> None:
        """Serve the web view: sessions' tilt series live, tilt-series results, failures, a JSON API."""
        import uvicorn
        from pydantic import SecretStr

        from tiltstream.web import WebSettings
        from tiltstream.web import create_app as create_web_app

        config = WebSettings(kafka=settings.kafka, topics=settings.topics)
        changes: dict[str, object] = {}
        if host is not None:
            changes["host"] = host
        if port is not None:
            changes["port"] = port
        if url is not None:
            changes["database_url"] = SecretStr(url)
        config = config.model_copy(update=changes)
        uvicorn.run(
            create_web_app(config),
            host=config.host,
            port=config.port,
            log_level=settings.log.level.lower(),
            timeout_graceful_shutdown=5,
        )

    return app
