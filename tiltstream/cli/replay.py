"""``tiltstream replay GROUP``: move a consumer group's offsets to reprocess events (dry run by default)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.streams.replay import (
    GroupActiveError,
    ResetKind,
    ResetSpec,
    execute_reset,
    parse_duration,
    plan_reset,
)

__all__ = ["create_app"]


def _spec(
    to_datetime: str | None,
    by_duration: str | None,
    shift_by: int | None,
    to_offset: int | None,
    to_earliest: bool,
    to_latest: bool,
) -> ResetSpec:
    chosen = [
        name
        for name, value in (
            ("--to-datetime", to_datetime),
            ("--by-duration", by_duration),
            ("--shift-by", shift_by),
            ("--to-offset", to_offset),
            ("--to-earliest", to_earliest or None),
            ("--to-latest", to_latest or None),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        raise typer.BadParameter(
            "give exactly one of --to-datetime, --by-duration, --shift-by, --to-offset, --to-earliest, "
            f"--to-latest (got {', '.join(chosen) or 'none'})"
        )
    if to_datetime is not None:
        try:
            at = datetime.fromisoformat(to_datetime)
        except ValueError:
            raise typer.BadParameter(f"--to-datetime {to_datetime!r} is not ISO 8601") from None
        return ResetSpec(ResetKind.DATETIME, at=at if at.tzinfo else at.astimezone())
    if by_duration is not None:
        try:
            return ResetSpec(ResetKind.DURATION, duration=parse_duration(by_duration))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    if shift_by is not None:
        return ResetSpec(ResetKind.SHIFT, amount=shift_by)
    if to_offset is not None:
        return ResetSpec(ResetKind.OFFSET, amount=to_offset)
    return ResetSpec(ResetKind.EARLIEST if to_earliest else ResetKind.LATEST)


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``replay`` command."""
    app = typer.Typer()
    catalogue = Catalogue(settings.topics)

    @app.command("replay")
    def replay(
        group: str = typer.Argument(..., help="Consumer group, e.g. tiltstream-motioncorr."),
        topic: Annotated[
            list[str] | None,
            typer.Option("--topic", help="Topic (name or suffix); default: the group's topics."),
        ] = None,
        to_datetime: str | None = typer.Option(None, help="First event at or after this time (ISO 8601)."),
        by_duration: str | None = typer.Option(None, help="Go back this long from now (PT1H30M or 1h30m)."),
        shift_by: int | None = typer.Option(None, help="Move each partition by N (negative: back)."),
        to_offset: int | None = typer.Option(None, help="This offset in every partition."),
        to_earliest: bool = typer.Option(False, help="The first retained event."),
        to_latest: bool = typer.Option(False, help="The end: skip everything pending."),
        execute: bool = typer.Option(False, "--execute", help="Apply the reset (default: dry run)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per partition."),
    ) -> None:
        """Plan (and with --execute apply) a reset of GROUP's committed offsets."""
        spec = _spec(to_datetime, by_duration, shift_by, to_offset, to_earliest, to_latest)
        topics = [
            catalogue.topic(t).name if not t.startswith(settings.topics.prefix) else t for t in topic or []
        ]
        admin = create_admin(settings.kafka)
        try:
            changes = plan_reset(admin, group, spec, topics or None)
        except (KeyError, ValueError) as exc:
            err_console.print(f"[red]{exc.args[0]}[/]")
            raise typer.Exit(1) from None
        if as_json:
            for c in changes:
                print(
                    json.dumps(
                        {"topic": c.topic, "partition": c.partition, "current": c.current, "new": c.new}
                    )
                )
        else:
            table = Table("topic", "partition", "current", "new", "replays", "log start", "log end")
            table.title = f"replay {group} ({spec.kind.value})" + ("" if execute else " — dry run")
            for c in changes:
                current = "-" if c.current is None else str(c.current)
                table.add_row(
                    c.topic,
                    str(c.partition),
                    current,
                    str(c.new),
                    str(c.events_to_replay),
                    str(c.low),
                    str(c.high),
                )
            console.print(table)
        if not execute:
            err_console.print("Dry run: nothing changed. Add --execute to apply.")
            return
        try:
            execute_reset(admin, group, changes)
        except GroupActiveError as exc:
            err_console.print(f"[red]refused:[/] {exc}")
            raise typer.Exit(2) from None
        err_console.print(f"[green]done[/]: {len(changes)} partition(s) of {group} reset.")

    return app
