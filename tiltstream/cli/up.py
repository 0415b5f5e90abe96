"""``tiltstream up SESSION_DIR``: every service of the pipeline on this machine, on the configured cluster."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import typer
from rich.table import Table

from tiltstream.cli._common import console
from tiltstream.pipeline import PipelineLayout, pipeline_services
from tiltstream.settings import CliSettings, default_state_dir
from tiltstream.stages import laid_out_topics
from tiltstream.streams.admin import ApplyAction, apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.supervisor import Supervisor

__all__ = ["create_app", "lay_out_topics"]


def lay_out_topics(settings: CliSettings) -> None:
    """Create what ``topics apply`` lays out (every group's dead-letter topic too) before any service."""
    changes = apply_topics(create_admin(settings.kafka), laid_out_topics(Catalogue(settings.topics)))
    created = sum(change.action is ApplyAction.CREATED for change in changes)
    console.print(f"topics: {created} created, {len(changes) - created} already in place")


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``up`` command."""
    app = typer.Typer()

    @app.command("up")
    def up(
        session_dir: str = typer.Argument(..., help="The microscope's session directory to watch."),
        raw_root: str = typer.Option(..., help="Mount point of the 'raw' data root (holds SESSION_DIR)."),
        processed_root: str = typer.Option(..., help="Mount point of the 'processed' data root."),
        session_id: str = typer.Option(..., help="The session (visit) id, e.g. cm40000-1."),
        microscope: str = typer.Option("m01", help="Microscope name."),
        database_url: str = typer.Option(
            "", envvar="TILTSTREAM_ISPYB_DATABASE_URL", help="ISPyB database URL (SQLAlchemy)."
        ),
        metrics_base_port: int = typer.Option(9401, help="Services listen on consecutive ports from here."),
        state_dir: str = typer.Option("", help="Aggregator table and service logs (default: the state dir)."),
    ) -> None:
        """Lay out the topics, then run the watcher, every processing stage, the aggregator and the ISPyB
        sink until Ctrl-C or SIGTERM."""
        state = Path(state_dir) if state_dir else default_state_dir()
        layout = PipelineLayout(
            session_dir=Path(session_dir).resolve(),
            raw_root=Path(raw_root).resolve(),
            processed_root=Path(processed_root).resolve(),
            state_dir=state,
            bootstrap_servers=settings.kafka.bootstrap_servers,
            database_url=database_url or f"sqlite:///{state / 'ispyb.sqlite'}",
            session_id=session_id,
            microscope=microscope,
            metrics_base_port=metrics_base_port,
        )
        lay_out_topics(settings)
        supervisor = Supervisor(pipeline_services(layout), state / "logs")
        stopping = {"now": False}

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        supervisor.start()
        table = Table("service", "pid", "log", title=f"tiltstream up on {layout.bootstrap_servers}")
        for service in supervisor.states:
            table.add_row(service.spec.name, str(service.pid), str(service.log_file))
        console.print(table)
        try:
            while not stopping["now"]:
                supervisor.check()
                if all(service.failed for service in supervisor.states):
                    break
                time.sleep(1.0)
        finally:
            console.print("stopping: every service drains its current job…")
            supervisor.stop()
        failed = [service.spec.name for service in supervisor.states if service.failed]
        if failed:
            console.print(f"[red]failed for good:[/] {', '.join(failed)} (see their logs)")
            raise typer.Exit(1)

    return app
