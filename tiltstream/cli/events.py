"""``tiltstream events``: print a topic's events as JSON lines, decoded with the schemas."""

from __future__ import annotations

import sys
from datetime import datetime

import typer

from tiltstream.cli._common import err_console
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue, Topic
from tiltstream.streams.reader import StartAt, read_events, to_json_line
from tiltstream.streams.schema_topic import schema_aware_serde

__all__ = ["create_app", "resolve_topics"]


def resolve_topics(catalogue: Catalogue, names: list[str]) -> list[Topic]:
    """Catalogue topics for the names given: full names, suffixes, or ``all`` for every pipeline topic."""
    if not names or names == ["all"]:
        return catalogue.topics()
    topics = []
    for name in names:
        try:
            topics.append(catalogue.topic(name))
        except KeyError:
            known = ", ".join(
                t.name.removeprefix(f"{catalogue.settings.prefix}.") for t in catalogue.topics()
            )
            raise typer.BadParameter(f"unknown topic {name!r}; known: {known}, or a dlq topic") from None
    return topics


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"--since {value!r} is not an ISO 8601 date/time") from None
    return parsed if parsed.tzinfo else parsed.astimezone()


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``events`` command group."""
    app = typer.Typer(help="Read events from topics as JSON lines (for analysts).", no_args_is_help=True)
    catalogue = Catalogue(settings.topics)

    topic_arg = typer.Argument(..., help="Topic name or suffix (e.g. movie.acquired), several, or 'all'.")
    key_opt = typer.Option(None, "--key", help="Only events of this tilt series id.")
    since_opt = typer.Option(None, "--since", help="Start at this time (ISO 8601, local time if no zone).")
    limit_opt = typer.Option(None, "--limit", min=1, help="Stop after this many events.")

    def emit(topics: list[Topic], **kwargs: object) -> None:
        count = 0
        try:
            serde = schema_aware_serde(settings.kafka, catalogue)
            for event in read_events(settings.kafka, topics, serde=serde, **kwargs):  # type: ignore[arg-type]
                sys.stdout.write(to_json_line(event) + "\n")
                sys.stdout.flush()
                count += 1
        except KeyError as exc:
            err_console.print(f"[red]{exc.args[0]}[/]")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            pass
        err_console.print(f"[dim]{count} event(s)[/]")

    @app.command("dump")
    def dump(
        topic: list[str] = topic_arg,
        from_beginning: bool = typer.Option(
            True, "--from-beginning/--from-end", help="Start at the first retained event (default)."
        ),
        key: str | None = key_opt,
        since: str | None = since_opt,
        limit: int | None = limit_opt,
    ) -> None:
        """Print the events a topic holds now, then stop."""
        emit(
            resolve_topics(catalogue, topic),
            start=StartAt.BEGINNING if from_beginning else StartAt.END,
            since=_parse_since(since),
            key=key,
            limit=limit,
            follow=False,
        )

    @app.command("tail")
    def tail(
        topic: list[str] = topic_arg,
        from_beginning: bool = typer.Option(False, "--from-beginning", help="Replay retained events first."),
        key: str | None = key_opt,
        since: str | None = since_opt,
        limit: int | None = limit_opt,
        idle_timeout: float | None = typer.Option(
            None, "--idle-timeout", help="Stop after this many idle seconds."
        ),
    ) -> None:
        """Follow a topic live and print each new event (Ctrl-C stops)."""
        emit(
            resolve_topics(catalogue, topic),
            start=StartAt.BEGINNING if from_beginning else StartAt.END,
            since=_parse_since(since),
            key=key,
            limit=limit,
            follow=True,
            idle_timeout=idle_timeout,
        )

    return app
