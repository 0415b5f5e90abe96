"""``tiltstream status``: consumer-group lag per topic and partition, and every tilt series' state."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from tiltstream.cli._common import console
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.streams.schema_topic import schema_aware_serde
from tiltstream.streams.status_view import IspybSchema, ispyb_schema, pipeline_groups, series_statuses

__all__ = ["create_app"]

_COUNTS = ("acquired_tilts", "corrected_tilts", "ctf_tilts", "failed_tilts", "excluded_tilts")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _print_schema(found: IspybSchema, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"kind": "ispyb", **asdict(found), "missing": list(found.missing)}))
        return
    if found.error is not None:
        console.print(f"ISPyB {found.database}: [red]unreachable[/] ({found.error})")
        return
    console.print(f"ISPyB {found.database}: {found.schema}")
    if found.missing:
        console.print(f"[red]the sink would refuse this database, lacking:[/] {'; '.join(found.missing)}")


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``status`` command."""
    app = typer.Typer()
    catalogue = Catalogue(settings.topics)

    @app.command("status")
    def status(
        group: str | None = typer.Option(None, "--group", help="Only this consumer group."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per group and per series."),
        database_url: str | None = typer.Option(
            None,
            "--database-url",
            envvar="TILTSTREAM_ISPYB_DATABASE_URL",
            help="ISPyB (the sink's URL): show its schema kind and version too.",
        ),
    ) -> None:
        """Lag of every consumer group on the pipeline's topics, the state of every tilt series, and the
        ISPyB schema version when a database URL is given."""
        if database_url:
            _print_schema(ispyb_schema(database_url), as_json=as_json)
        groups = pipeline_groups(create_admin(settings.kafka), catalogue, group)
        statuses = series_statuses(settings.kafka, catalogue, schema_aware_serde(settings.kafka, catalogue))
        if as_json:
            for lag in groups:
                partitions: list[dict[str, Any]] = [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "end": p.high,
                        "lag": p.lag,
                    }
                    for p in lag.partitions
                ]
                row = {
                    "group": lag.group.group_id,
                    "state": lag.group.state,
                    "members": len(lag.group.members),
                }
                print(json.dumps({"kind": "group", **row, "lag": lag.lag, "partitions": partitions}))
            for series, value in statuses.items():
                print(json.dumps({"kind": "series", "tilt_series_id": series, **value}, default=_default))
            return
        table = Table("group", "state", "members", "topic", "partition", "committed", "end", "lag")
        table.title = "consumer groups"
        for lag in groups:
            first = True
            for p in lag.partitions:
                head = (
                    (lag.group.group_id, lag.group.state, str(len(lag.group.members)))
                    if first
                    else ("", "", "")
                )
                committed = "-" if p.committed is None else str(p.committed)
                style = "red" if p.lag else "green"
                table.add_row(
                    *head, p.topic, str(p.partition), committed, str(p.high), f"[{style}]{p.lag}[/]"
                )
                first = False
        console.print(table)
        series_table = Table(
            "tilt series", "state", "acquired", "corrected", "ctf", "failed", "excluded", "version"
        )
        series_table.title = "tilt series"
        for series, value in statuses.items():
            counts = [str(value.get(c, "")) for c in _COUNTS]
            series_table.add_row(series, value["state"], *counts, str(value["latest_version"]))
        console.print(series_table)

    return app
