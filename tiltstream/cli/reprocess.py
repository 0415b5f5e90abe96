"""``tiltstream reprocess TILT_SERIES --from STAGE``: redo a series' processing from a stage on."""

from __future__ import annotations

import typer
from rich.table import Table

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings
from tiltstream.stages import REGISTRY, StageRegistry
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reprocess import reemit, reprocess_plan
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["create_app"]


def create_app(settings: CliSettings, registry: StageRegistry = REGISTRY) -> typer.Typer:
    """Build the ``reprocess`` command; ``--from`` takes the name of any stage of ``registry``."""
    app = typer.Typer()
    catalogue = Catalogue(settings.topics)
    names = registry.names()

    def known_stage(name: str) -> str:
        if name not in names:
            raise typer.BadParameter(f"{name!r} is not a stage; choose from {', '.join(names)}")
        return name

    @app.command("reprocess")
    def reprocess(
        tilt_series: str = typer.Argument(..., help="Tilt series id (the topics' key)."),
        from_stage: str = typer.Option(
            names[0], "--from", callback=known_stage, help=f"First stage to redo: {' | '.join(names)}."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent, send nothing."),
    ) -> None:
        """Re-emit the stage's input events for TILT_SERIES with a new attempt number."""
        serde = schema_aware_serde(settings.kafka, catalogue)
        stage = registry.stage(from_stage)
        from tiltstream.connectors.source.session_events import with_latest_parameters

        update = with_latest_parameters(settings.kafka, catalogue)
        plan = reprocess_plan(settings.kafka, catalogue, tilt_series, stage, serde, update)
        if not plan:
            err_console.print(f"[red]no {stage.name} input found for {tilt_series}[/]")
            raise typer.Exit(1)
        title = f"reprocess {tilt_series} from {stage.name}"
        table = Table("record", "subject", "attempt", "session parameters", title=title)
        for item in plan:
            subject = item.value[stage.subject_field]
            version = item.value.get("session_parameters_version")
            table.add_row(
                item.record,
                str(subject),
                str(item.value["metadata"]["attempt"]),
                "" if version is None else f"v{version}",
            )
        console.print(table)
        if dry_run:
            err_console.print("Dry run: nothing sent.")
            return
        sent = reemit(EventProducer(create_producer(settings.kafka), catalogue, serde), plan)
        err_console.print(f"[green]sent {sent} event(s)[/] to {catalogue.for_record(plan[0].record).name}")

    return app
