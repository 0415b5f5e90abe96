"""``tiltstream reprocess TILT_SERIES --from STAGE``: redo a series' processing from a stage on."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reprocess import Stage, reemit, reprocess_plan
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``reprocess`` command."""
    app = typer.Typer()
    catalogue = Catalogue(settings.topics)

    @app.command("reprocess")
    def reprocess(
        tilt_series: str = typer.Argument(..., help="Tilt series id (the topics' key)."),
        from_stage: Annotated[Stage, typer.Option("--from", help="First stage to redo.")] = Stage.MOTIONCORR,
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent, send nothing."),
    ) -> None:
        """Re-emit the stage's input events for TILT_SERIES with a new attempt number."""
        serde = schema_aware_serde(settings.kafka, catalogue)
        plan = reprocess_plan(settings.kafka, catalogue, tilt_series, from_stage, serde)
        if not plan:
            err_console.print(f"[red]no {from_stage.value} input found for {tilt_series}[/]")
            raise typer.Exit(1)
        table = Table(
            "record", "subject", "attempt", title=f"reprocess {tilt_series} from {from_stage.value}"
        )
        for item in plan:
            subject = item.value.get("movie_id") or item.value.get("request_id")
            table.add_row(item.record, str(subject), str(item.value["metadata"]["attempt"]))
        console.print(table)
        if dry_run:
            err_console.print("Dry run: nothing sent.")
            return
        sent = reemit(EventProducer(create_producer(settings.kafka), catalogue, serde), plan)
        err_console.print(f"[green]sent {sent} event(s)[/] to {catalogue.for_record(plan[0].record).name}")

    return app
