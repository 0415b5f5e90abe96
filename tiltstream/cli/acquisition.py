"""``tiltstream acquisition end TILT_SERIES``: an operator ends a tilt series by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``acquisition`` command group."""
    app = typer.Typer(help="Acquisition: operator actions on tilt series.", no_args_is_help=True)

    @app.command("end")
    def end(
        tilt_series: Annotated[str, typer.Argument(help="The tilt series id, e.g. cm40000-1:Position_3.")],
        days: Annotated[float, typer.Option(help="Look for the series' events this many days back.")] = 7.0,
        force: Annotated[bool, typer.Option(help="Emit even if its end was announced already.")] = False,
    ) -> None:
        """Announce that no more tilts will come for TILT_SERIES (reason 'operator')."""
        from tiltstream.connectors.source.operator_end import (
            AlreadyEndedError,
            UnknownSeriesError,
            end_acquisition,
        )
        from tiltstream.streams.catalogue import Catalogue

        since = datetime.now(UTC) - timedelta(days=days)
        try:
            value = end_acquisition(
                settings.kafka, Catalogue(settings.topics), tilt_series, since=since, force=force
            )
        except (UnknownSeriesError, AlreadyEndedError) as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        console.print(
            f"{tilt_series}: acquisition ended by the operator with {value['acquired_tilt_count']} movies "
            f"(event {value['metadata']['event_id']})."
        )

    return app
