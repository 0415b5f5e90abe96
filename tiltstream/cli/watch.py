"""``tiltstream watch SESSION_DIR``: the acquisition source connector as a long-lived service."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry

from tiltstream.cli._common import err_console
from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``watch`` command."""
    app = typer.Typer()

    @app.command("watch")
    def watch(
        session_dir: Annotated[Path, typer.Argument(help="The microscope's session directory.", exists=True)],
        data_root: Annotated[Path | None, typer.Option(help="Mount point of the data root [parent].")] = None,
        root_name: Annotated[str | None, typer.Option(help="The data root's name in events [raw].")] = None,
        session_id: Annotated[str | None, typer.Option(help="Session (visit) id [folder name].")] = None,
        microscope: Annotated[str | None, typer.Option(help="Microscope name [m01].")] = None,
        transfer_to: Annotated[Path | None, typer.Option(help="Copy movies here (facility storage).")] = None,
        delete_source: Annotated[
            bool, typer.Option(help="Delete each source once its copy is announced.")
        ] = False,
        transfer_bytes_per_second: Annotated[float | None, typer.Option(help="Throttle the copies.")] = None,
        tilts_per_series: Annotated[
            int | None, typer.Option(help="Planned tilts: end a series once all came.")
        ] = None,
        series_settle_seconds: Annotated[
            float | None, typer.Option(help="Quiet time that ends a series.")
        ] = None,
        movie_settle_seconds: Annotated[
            float | None, typer.Option(help="Quiet time before a bad movie is refused.")
        ] = None,
        poll_interval_seconds: Annotated[float | None, typer.Option(help="Seconds between scans.")] = None,
        metrics_port: Annotated[
            int | None, typer.Option(help="Serve Prometheus metrics on this port.")
        ] = None,
        exit_when_done: Annotated[bool, typer.Option(help="Exit once every series seen has ended.")] = False,
    ) -> None:
        """Watch a session directory and announce its movies and tilt series.

        Emits MovieAcquired per complete movie and TiltSeriesAcquisitionEnded per finished series.

        Bad input becomes ProcessingFailed; SIGTERM or Ctrl-C stop it after the current scan.
        """
        from tiltstream.connectors.source import SourceSettings, Watcher
        from tiltstream.metrics import start_metrics_server

        given: dict[str, Any] = {
            "data_root": data_root,
            "root_name": root_name,
            "session_id": session_id,
            "microscope": microscope,
            "transfer_to": transfer_to,
            "transfer_bytes_per_second": transfer_bytes_per_second,
            "tilts_per_series": tilts_per_series,
            "series_settle_seconds": series_settle_seconds,
            "movie_settle_seconds": movie_settle_seconds,
            "poll_interval_seconds": poll_interval_seconds,
            "metrics_port": metrics_port,
        }
        overrides = {k: v for k, v in given.items() if v is not None}
        if delete_source:
            overrides["delete_source"] = True
        if exit_when_done:
            overrides["exit_when_done"] = True
        source = SourceSettings(kafka=settings.kafka, topics=settings.topics, **overrides)
        if source.delete_source and source.transfer_to is None:
            err_console.print("[red]--delete-source needs --transfer-to[/]")
            raise typer.Exit(2)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        registry = CollectorRegistry()
        server = start_metrics_server(source.metrics_port, registry=registry) if source.metrics_port else None
        try:
            Watcher(session_dir, source, registry=registry).run(stop)
        except KeyError as exc:  # a topic is missing
            err_console.print(f"[red]{exc.args[0]}[/]")
            raise typer.Exit(1) from None
        finally:
            if server is not None:
                server.close()

    return app
