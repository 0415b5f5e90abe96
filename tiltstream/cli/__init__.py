"""The ``tiltstream`` command line: one Typer application built by :func:`create_app`."""

from __future__ import annotations

import typer

from tiltstream.log import configure_logging
from tiltstream.settings import CliSettings

__all__ = ["create_app", "main"]


def create_app(settings: CliSettings | None = None) -> typer.Typer:
    """Build the ``tiltstream`` command with every sub-command bound to ``settings``."""
    from tiltstream.cli import (
        acquisition,
        aggregate,
        broker,
        demo,
        dlq,
        events,
        k8s,
        mdoc,
        process,
        replay,
        reprocess,
        schemas,
        session,
        simulate,
        sink,
        stats,
        status,
        topics,
        up,
        watch,
        web,
    )

    settings = settings or CliSettings()
    app = typer.Typer(
        name="tiltstream",
        help="Live cryo-ET processing on Kafka: topics, events, the local broker and the pipeline.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    app.registered_commands += demo.create_app(settings).registered_commands
    app.registered_commands += replay.create_app(settings).registered_commands
    app.registered_commands += reprocess.create_app(settings).registered_commands
    app.registered_commands += status.create_app(settings).registered_commands
    app.registered_commands += stats.create_app(settings).registered_commands
    app.registered_commands += up.create_app(settings).registered_commands
    app.add_typer(topics.create_app(settings), name="topics")
    app.add_typer(events.create_app(settings), name="events")
    app.add_typer(schemas.create_app(settings), name="schemas")
    app.add_typer(broker.create_app(settings), name="broker")
    app.add_typer(aggregate.create_app(settings), name="aggregate")
    app.add_typer(dlq.create_app(settings), name="dlq")
    app.add_typer(k8s.create_app(settings), name="k8s")
    app.add_typer(sink.create_app(settings), name="sink")
    app.registered_commands += simulate.create_app(settings).registered_commands
    app.registered_commands += watch.create_app(settings).registered_commands
    app.registered_commands += web.create_app(settings).registered_commands
    app.add_typer(acquisition.create_app(settings), name="acquisition")
    app.add_typer(process.create_app(settings), name="process")
    app.add_typer(mdoc.create_app(settings), name="mdoc")
    app.add_typer(session.create_app(settings), name="session")
    return app


def main() -> None:
    """Console-script entry point."""
    settings = CliSettings()
    configure_logging(settings.log)
    create_app(settings)()
