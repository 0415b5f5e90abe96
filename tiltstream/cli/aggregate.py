"""``tiltstream aggregate``: run the tilt-series aggregator (a faust-streaming worker)."""

from __future__ import annotations

import typer

from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``aggregate`` command (settings from ``TILTSTREAM_AGGREGATOR_*``)."""
    app = typer.Typer(help="The tilt-series aggregator.", invoke_without_command=True)

    @app.callback()
    def aggregate(
        loglevel: str = typer.Option("warning", "--faust-loglevel", help="Log level of Faust's own logs."),
    ) -> None:
        """Decide when tilt series can be reconstructed; emit commands and status (runs until stopped)."""
        import faust

        from tiltstream.metrics import start_metrics_server
        from tiltstream.streams.aggregator.app import create_app as create_faust_app
        from tiltstream.streams.aggregator.cluster import prepare_cluster
        from tiltstream.streams.aggregator.settings import AggregatorSettings

        aggregator = AggregatorSettings(kafka=settings.kafka, topics=settings.topics)
        prepare_cluster(aggregator)
        if aggregator.metrics_port is not None:
            start_metrics_server(aggregator.metrics_port)
        worker = faust.Worker(create_faust_app(aggregator), loglevel=loglevel, quiet=True)
        worker.execute_from_commandline()

    return app
