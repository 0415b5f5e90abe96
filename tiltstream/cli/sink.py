"""``tiltstream sink ispyb``: the ISPyB sink service, its schema check and a development database."""

from __future__ import annotations

import signal
import threading

import typer
from pydantic import SecretStr

from tiltstream.cli._common import console
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``sink`` command group (``sink ispyb run|check|init-db``)."""
    app = typer.Typer(
        help="Sink connectors: the pipeline's results into facility systems.", no_args_is_help=True
    )
    ispyb = typer.Typer(
        help="Results into the facility's ISPyB database (TILTSTREAM_ISPYB_*).", no_args_is_help=True
    )
    app.add_typer(ispyb, name="ispyb")

    def sink_settings(url: str | None) -> IspybSinkSettings:
        config = IspybSinkSettings(kafka=settings.kafka, topics=settings.topics)
        return config.model_copy(update={"database_url": SecretStr(url)}) if url else config

    url_option = typer.Option(None, "--url", help="SQLAlchemy URL (default: TILTSTREAM_ISPYB_DATABASE_URL).")

    @ispyb.command("run")
    def run(
        url: str | None = url_option,
        until_caught_up: bool = typer.Option(
            False, "--until-caught-up", help="Exit once every partition is written (rebuild by replay)."
        ),
    ) -> None:
        """Follow every result topic and write ISPyB until stopped (SIGTERM/Ctrl-C)."""
        from tiltstream.connectors.ispyb.sink import IspybSink
        from tiltstream.metrics import start_metrics_server

        config = sink_settings(url)
        sink = IspybSink(config)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if config.metrics_port is not None:
            start_metrics_server(config.metrics_port, registry=sink.registry)
        try:
            sink.run(stop, until_caught_up=until_caught_up)
        except KeyboardInterrupt:
            stop.set()

    @ispyb.command("check")
    def check(url: str | None = url_option) -> None:
        """Check that the database has every table and column the sink needs."""
        from tiltstream.connectors.ispyb.schema import SchemaMismatchError, check_schema
        from tiltstream.connectors.ispyb.sink import create_engine

        config = sink_settings(url)
        engine = create_engine(config.database_url.get_secret_value())
        try:
            check_schema(engine)
        except SchemaMismatchError as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(1) from error
        console.print(f"{engine.url.render_as_string(hide_password=True)}: every table and column is there.")

    @ispyb.command("init-db")
    def init_db(url: str | None = url_option) -> None:
        """Create the ISPyB tables the sink needs (MariaDB, PostgreSQL or SQLite), for development."""
        from tiltstream.connectors.ispyb.schema import create_tables
        from tiltstream.connectors.ispyb.sink import create_engine

        config = sink_settings(url)
        engine = create_engine(config.database_url.get_secret_value())
        created = create_tables(engine)
        where = engine.url.render_as_string(hide_password=True)
        if created:
            console.print(f"{where}: created {len(created)} tables: {', '.join(created)}.")
        else:
            console.print(f"{where}: nothing to create; every table the sink needs is there.")

    return app
