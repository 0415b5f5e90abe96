"""``tiltstream broker``: fetch, start, stop and inspect the local single-node Kafka broker."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tiltstream.settings import CliSettings
from tiltstream.streams.broker import BrokerError, KafkaFetchError, LocalBroker, fetch_kafka

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``broker`` sub-command group, bound to ``settings.broker``.

    Parameters
    ----------
    settings
        The CLI's settings; only ``settings.broker`` is used.

    Returns
    -------
    typer.Typer
        The ``fetch``, ``start``, ``stop``, ``status`` and ``logs`` commands.
    """
    broker_settings = settings.broker
    version = broker_settings.kafka_version
    console = Console()
    app = typer.Typer(
        help="The local single-node KRaft Kafka broker, run from Maven Central's jars.",
        no_args_is_help=True,
    )

    def fail(error: Exception) -> typer.Exit:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return typer.Exit(code=1)

    @app.command()
    def fetch(
        force: Annotated[bool, typer.Option("--force", help="Fetch again even when cached.")] = False,
    ) -> None:
        """Download Kafka's jars (and a logging binding) from Maven Central into the cache."""
        try:
            with console.status(f"Fetching Kafka {version} from Maven Central…"):
                libs = fetch_kafka(broker_settings, force=force)
        except KafkaFetchError as error:
            raise fail(error) from error
        console.print(f"[green]Kafka {version}[/] jars are in {libs}")

    @app.command()
    def start(
        wait: Annotated[bool, typer.Option(help="Wait until the broker answers requests.")] = True,
        timeout: Annotated[
            float | None, typer.Option(help="Seconds to wait for the broker to become healthy.")
        ] = None,
    ) -> None:
        """Start the broker in the background (formatting its storage the first time)."""
        broker = LocalBroker(broker_settings)
        pid = broker.pid
        if pid is not None:
            address = broker.bootstrap_servers
            console.print(
                f"Kafka is already running (pid {pid}); bootstrap servers: [bold]{address}[/]", soft_wrap=True
            )
            return
        try:
            with console.status(f"Fetching Kafka {version} from Maven Central…"):
                fetch_kafka(broker_settings)
            with console.status(f"Starting Kafka {version}…"):
                broker.start(wait=wait, timeout=timeout)
        except (BrokerError, KafkaFetchError) as error:
            raise fail(error) from error
        ready = f" healthy after {broker.startup_seconds:.1f} s;" if broker.startup_seconds else ""
        console.print(
            f"[green]Kafka {version}[/] started (pid {broker.pid});{ready} "
            f"bootstrap servers: [bold]{broker.bootstrap_servers}[/]",
            soft_wrap=True,
        )

    @app.command()
    def stop(
        timeout: Annotated[
            float | None, typer.Option(help="Seconds to wait for a clean shutdown before SIGKILL.")
        ] = None,
    ) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after the timeout)."""
        broker = LocalBroker(broker_settings)
        try:
            with console.status("Stopping Kafka…"):
                stopped = broker.stop(timeout)
        except BrokerError as error:
            raise fail(error) from error
        console.print("[green]Kafka stopped[/]" if stopped else "Kafka was not running")

    @app.command()
    def status() -> None:
        """Show whether the broker runs, its pid, address and files; exit 1 when it is not running."""
        snapshot = LocalBroker(broker_settings).status()
        table = Table(show_header=False, box=None)
        table.add_row("running", "[green]yes[/]" if snapshot.running else "[red]no[/]")
        table.add_row("pid", str(snapshot.pid) if snapshot.pid else "-")
        table.add_row("bootstrap servers", snapshot.bootstrap_servers or "- (chosen at start)")
        table.add_row("kafka version", snapshot.kafka_version)
        table.add_row("state dir", str(snapshot.state_dir))
        table.add_row("log file", str(snapshot.log_file))
        console.print(table)
        if not snapshot.running:
            raise typer.Exit(code=1)

    @app.command()
    def logs(
        lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many lines to show.")] = 40,
    ) -> None:
        """Print the tail of the broker's log."""
        broker = LocalBroker(broker_settings)
        tail = broker.log_tail(lines)
        if not tail:
            console.print(f"no log yet at {broker.log_file}")
            return
        console.print(tail, markup=False, highlight=False, soft_wrap=True)

    return app
