"""``tiltstream session set|show``: a session's operator-set processing parameters, as events."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``session`` command group."""
    app = typer.Typer(help="Session processing parameters (versioned events).", no_args_is_help=True)

    @app.command("set")
    def set_(
        session: Annotated[str, typer.Argument(help="The session id, e.g. cm40000-1.")],
        assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE ... (KEY= unsets a key).")],
        microscope: Annotated[str, typer.Option(help="The microscope, for the event's metadata.")] = "m01",
    ) -> None:
        """Publish the session's next parameters version: the latest with ASSIGNMENTS applied. New movies
        get it; reprocess old ones with `tiltstream reprocess`."""
        from tiltstream.connectors.source.parameters import parse_assignments
        from tiltstream.connectors.source.session_events import latest_parameters, publish_parameters
        from tiltstream.streams.catalogue import Catalogue

        catalogue = Catalogue(settings.topics)
        current = latest_parameters(settings.kafka, catalogue, session)
        try:
            wanted = parse_assignments(assignments, current)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
        value = publish_parameters(settings.kafka, catalogue, session, wanted, microscope=microscope)
        console.print(f"{session}: session parameters version {value['version']} published.")

    @app.command("show")
    def show(
        session: Annotated[str, typer.Argument(help="The session id.")],
        as_json: Annotated[bool, typer.Option("--json", help="As a JSON object.")] = False,
    ) -> None:
        """Print the parameters in force for SESSION (version 0: none set)."""
        from tiltstream.connectors.source.parameters import DETECTOR_FIELDS
        from tiltstream.connectors.source.session_events import latest_parameters
        from tiltstream.streams.catalogue import Catalogue

        current = latest_parameters(settings.kafka, Catalogue(settings.topics), session)
        if as_json:
            typer.echo(json.dumps(current.model_dump()))
            return
        console.print(f"{session}: version {current.version}")
        for key, value in current.model_dump().items():
            if key != "version":
                unset = (
                    "(the motion-correction service's setting)"
                    if key in DETECTOR_FIELDS
                    else "(from the mdoc)"
                )
                console.print(f"  {key} = {unset if value is None else value}")

    return app
