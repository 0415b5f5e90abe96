"""``tiltstream demo``: the local stack, the pipeline's topics and a live view of its events."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from tiltstream.cli._common import console
from tiltstream.cli.topics import topic_retention
from tiltstream.demo_session import DemoOptions, run_demo_session
from tiltstream.log import configure_logging
from tiltstream.pipeline_view import summary_table
from tiltstream.session_latency import latency_table
from tiltstream.settings import CliSettings, KafkaSettings, LoggingSettings
from tiltstream.stages import laid_out_topics
from tiltstream.streams.admin import apply_topics, describe_topics
from tiltstream.streams.broker import BrokerError, KafkaFetchError, LocalBroker, fetch_kafka
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.streams.reader import ReadEvent, StartAt, read_events
from tiltstream.streams.sample_session import SampleSession

__all__ = ["StageBars", "create_app", "summarise"]

_COLOURS = {
    "MovieAcquired": "cyan",
    "TiltSeriesAcquisitionEnded": "cyan",
    "MovieMotionCorrected": "green",
    "CtfEstimated": "green",
    "ReconstructionRequested": "yellow",
    "TomogramReconstructed": "magenta",
    "TomogramDenoised": "magenta",
    "ProcessingFailed": "red",
    "TiltSeriesStatus": "blue",
}


def summarise(record: str | None, event: dict[str, Any] | None) -> str:
    """One short line of what an event says, for people watching the stream."""
    if record is None or event is None:
        return "undecodable"
    if record == "MovieAcquired":
        return f"tilt {event['acquisition_order']:>2} at {event['tilt_angle_degrees']:+5.1f}°"
    if record == "MovieMotionCorrected":
        return f"tilt {event['acquisition_order']:>2} motion {event['total_motion_angstroms']:.1f} Å"
    if record == "CtfEstimated":
        mean = (event["defocus_u_angstroms"] + event["defocus_v_angstroms"]) / 2e4
        fit = event["fit_resolution_angstroms"]
        return f"tilt {event['acquisition_order']:>2} defocus {mean:.2f} µm, fit {fit:.1f} Å"
    if record == "TiltSeriesAcquisitionEnded":
        return f"{event['acquired_tilt_count']} of {event['expected_tilt_count']} tilts ({event['reason']})"
    if record == "ReconstructionRequested":
        used = sum(not t["excluded"] for t in event["tilts"])
        return f"v{event['version']}: {used} tilts used, {len(event['tilts']) - used} excluded"
    if record == "TomogramReconstructed":
        size = f"{event['size_x_pixels']}x{event['size_y_pixels']}x{event['size_z_pixels']}"
        spacing = event["pixel_spacing_angstroms"]
        return f"v{event['version']}: {size} at {spacing:.2f} Å → {event['tomogram']['path']}"
    if record == "TomogramDenoised":
        return f"v{event['version']}: {event['model']} → {event['denoised_tomogram']['path']}"
    if record == "ProcessingFailed":
        return f"{event['stage']}: {event['error_class']}: {event['error_message']}"
    if record == "TiltSeriesStatus":
        return f"{event['state']}: {event['acquired_tilts']} acquired, {event['corrected_tilts']} corrected"
    return ""


def _line(event: ReadEvent, prefix: str) -> str:
    colour = _COLOURS.get(event.record or "", "white")
    when = datetime.fromtimestamp(event.timestamp_ms / 1000).strftime("%H:%M:%S")
    topic = event.topic.removeprefix(f"{prefix}.")
    return (
        f"[dim]{when}[/] [{colour}]{topic:<36}[/] {event.key or '-':<22} "
        f"[bold]{event.record or '?':<27}[/] {summarise(event.record, event.value)}"
    )


def _follow(
    settings: CliSettings,
    kafka: KafkaSettings,
    catalogue: Catalogue,
    *,
    duration: float | None,
    rate: float,
    positions: int,
    tilts: int,
) -> Counter[str]:
    """Run the sample session and print every event of every topic until ``duration`` or Ctrl-C."""
    ready, stop = threading.Event(), threading.Event()
    session = SampleSession(
        EventProducer(create_producer(kafka), catalogue), rate=rate, positions=positions, tilts=tilts
    )

    def start_session() -> None:
        if ready.wait(60):
            session.start()

    threading.Thread(target=start_session, daemon=True).start()
    timer = threading.Timer(duration, stop.set) if duration else None
    if timer:
        timer.start()
    counts: Counter[str] = Counter()
    events = read_events(kafka, catalogue.topics(), start=StartAt.END, follow=True, ready=ready, stop=stop)
    try:
        for event in events:
            counts[event.record or "undecodable"] += 1
            console.print(_line(event, settings.topics.prefix), highlight=False)
    except KeyboardInterrupt:
        console.print("\nstopping…")
    finally:
        events.close()
        if timer:
            timer.cancel()
        session.stop()
        if session.is_alive():
            session.join(10)
    return counts


class StageBars:
    """A progress bar per stage, from :meth:`~tiltstream.live_session.LiveSession.stage_counts`."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), console=console
        )
        self._tasks: dict[str, TaskID] = {}

    def update(self, counts: dict[str, tuple[int, int]]) -> None:
        """Move every stage's bar to its count."""
        for name, (done, expected) in counts.items():
            if name not in self._tasks:
                self._tasks[name] = self.progress.add_task(name, total=expected)
            self.progress.update(self._tasks[name], completed=done, total=expected)


def _serve_web(options: DemoOptions) -> None:
    """Serve the web view on the session's database until Ctrl-C, printing its address and token."""
    import uvicorn

    from tiltstream.web import WebSettings
    from tiltstream.web import create_app as create_web_app

    token = secrets.token_urlsafe(16)
    work = options.workdir
    settings = WebSettings(
        database_url=SecretStr(f"sqlite:///{work / 'ispyb.sqlite'}"),
        roots={"raw": work / "raw", "processed": work / "processed"},
        tokens={options.session_id: SecretStr(token)},
        follow_status=False,  # the session's broker has stopped: ISPyB holds every result
        port=options.web_port,
    )
    url = f"http://{settings.host}:{settings.port}/sessions/{options.session_id}?token={token}"
    console.print(f"[bold]web view:[/] {url}   (Ctrl-C stops it)", soft_wrap=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            create_web_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=3,
        )


def _full_pipeline(options: DemoOptions, *, web: bool) -> None:
    """Run :func:`~tiltstream.demo_session.run_demo_session` with live progress, the summary, the web view."""
    configure_logging(LoggingSettings(level="WARNING", format="console"))  # the table is the output here
    console.print(
        f"A simulated session of {options.positions} tilt series ({options.tilts} tilts, "
        f"{options.size_pixels}² movies) through every service; the microscope writes to "
        f"[bold]{options.workdir / 'detector'}[/], the watcher copies each movie to "
        f"[bold]{options.workdir / 'raw'}[/] (checksummed) and announces it. Ctrl-C stops."
    )
    bars, status = StageBars(), Text("starting Kafka, laying out the topics, starting the services…")
    with Live(Group(status, bars.progress), console=console, refresh_per_second=2):

        def ready(bootstrap: str) -> None:
            status.plain = f"Kafka on {bootstrap}; services started; the microscope is acquiring…"

        def progress(statuses: dict[str, dict[str, Any]], counts: dict[str, tuple[int, int]]) -> None:
            bars.update(counts)

        try:
            result = run_demo_session(options, on_progress=progress, on_ready=ready)
        except KeyboardInterrupt:
            console.print("stopped; every service was asked to drain and the broker was stopped.")
            return
    console.print(summary_table(result.summaries))
    console.print(latency_table(result.latencies))
    from tiltstream.demo_truth import agreement_table  # numpy: not for the CLI's start

    console.print(agreement_table(result.agreements))
    work = options.workdir
    console.print(f"files: {work / 'processed'}\nISPyB: {work / 'ispyb.sqlite'}\nlogs:  {work / 'logs'}")
    if web:
        _serve_web(options)


def _backbone_only(
    settings: CliSettings,
    *,
    duration: float | None,
    rate: float,
    positions: int,
    tilts: int,
    keep_broker: bool,
) -> None:
    """The broker, the topics and a live tail of sample events (``tiltstream demo --backbone-only``)."""
    broker = LocalBroker(settings.broker)
    version = settings.broker.kafka_version
    try:
        with console.status(f"Kafka {version}: fetching its jars from Maven Central (cached after once)…"):
            fetch_kafka(settings.broker)
        with console.status(f"Kafka {version}: starting a single-node KRaft broker…"):
            started = broker.start()
    except (KafkaFetchError, BrokerError) as exc:
        console.print(f"[red]could not start the local broker:[/] {exc}")
        raise typer.Exit(1) from None
    bootstrap = broker.bootstrap_servers
    state = "started" if started else "already running"
    console.print(f"[green]Kafka {version}[/] {state} on [bold]{bootstrap}[/] (state in {broker.state_dir})")
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})
    catalogue = Catalogue(settings.topics)
    admin = create_admin(kafka)
    topics = laid_out_topics(catalogue)
    changes = apply_topics(admin, topics)
    created = sum(c.action.value == "created" for c in changes)
    found = describe_topics(admin, [t.name for t in topics])
    table = Table("topic", "record", "partitions", "cleanup", "retention", title="the pipeline's topics")
    for topic in topics:
        table.add_row(
            topic.name,
            topic.record or ("(raw bytes)" if topic.is_dead_letter else "(schemas by fingerprint)"),
            str(found[topic.name].partitions),
            topic.config["cleanup.policy"],
            topic_retention(int(topic.config["retention.ms"]) if "retention.ms" in topic.config else None),
        )
    console.print(table)
    console.print(f"{created} topic(s) created, {len(changes) - created} already in place.")
    console.print(
        "[dim]Sample events of a small PACE session stand in for the microscope and the processing "
        "services until they join the demo. Ctrl-C stops.[/]"
    )
    try:
        counts = _follow(
            settings, kafka, catalogue, duration=duration, rate=rate, positions=positions, tilts=tilts
        )
    finally:
        # every client of _follow is gone by now, so stopping the broker leaves none retrying
        if started and not keep_broker:
            with console.status("stopping the broker…"):
                broker.stop()
            console.print("broker stopped")
        elif started:
            console.print(f"broker left running on {bootstrap}: `tiltstream broker stop` stops it")
    seen = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    console.print(f"{sum(counts.values())} events seen: {seen}")


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``demo`` command."""
    app = typer.Typer()

    @app.command("demo")
    def demo(
        duration: float | None = typer.Option(None, help="Stop after this many seconds (default: Ctrl-C)."),
        rate: float = typer.Option(4.0, min=0.1, help="Sample events per second."),
        positions: int = typer.Option(2, min=1, help="Tilt series acquired in parallel (PACE positions)."),
        tilts: int = typer.Option(9, min=1, max=41, help="Tilts per series."),
        keep_broker: bool = typer.Option(False, "--keep-broker", help="Leave the broker running at the end."),
        backbone_only: bool = typer.Option(
            False, "--backbone-only", help="Only the broker, the topics and sample events (no services)."
        ),
        workdir: str = typer.Option(
            "tiltstream-demo", help="Where the session's data, logs and database go."
        ),
        size: int = typer.Option(512, min=512, max=4096, help="Movie size in pixels (full pipeline)."),
        web: bool = typer.Option(
            True, "--web/--no-web", help="Serve the web view at the end (full pipeline)."
        ),
        web_port: int = typer.Option(8080, min=1, max=65535, help="The web view's port."),
    ) -> None:
        """A simulated session through the whole pipeline on this machine (or, with --backbone-only,
        the broker, the topics and a live tail of sample events)."""
        if not backbone_only:
            options = DemoOptions(
                workdir=Path(workdir).resolve(),
                positions=positions,
                size_pixels=size,
                transfer=True,
                web_port=web_port,
            )
            _full_pipeline(options, web=web)
            return
        _backbone_only(
            settings,
            duration=duration,
            rate=rate,
            positions=positions,
            tilts=tilts,
            keep_broker=keep_broker,
        )

    return app
