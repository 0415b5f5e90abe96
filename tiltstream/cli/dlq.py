"""``tiltstream dlq``: list, show and reinject the dead letters of consumer groups."""

from __future__ import annotations

import base64
import json
from collections import Counter

import typer
from rich.table import Table

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.dead_letters import DeadLetter, ledger_topic, read_dead_letters, reinject

__all__ = ["create_app"]

_GROUP = typer.Argument(..., help="Consumer group whose dead letters to read.")
_CLASS = typer.Option(None, "--error-class", help="Only this exception class (short or full name).")
_KEY = typer.Option(None, "--key", help="Only this tilt series id.")


def _as_dict(letter: DeadLetter) -> dict[str, object]:
    return {
        "dlq_partition": letter.dlq_partition,
        "dlq_offset": letter.dlq_offset,
        "key": (letter.key or b"").decode(errors="replace"),
        "source": f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}",
        "error_class": letter.error_class,
        "error_message": letter.error_message,
        "failed_at": letter.failed_at,
        "reinjected": letter.reinjected,
        "value_base64": base64.b64encode(letter.value or b"").decode(),
    }


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``dlq`` command group."""
    app = typer.Typer(help="Dead-letter topics: list, show, reinject.", no_args_is_help=True)
    catalogue = Catalogue(settings.topics)
    prefix = f"{settings.topics.prefix}.dlq."

    @app.command("list")
    def list_(as_json: bool = typer.Option(False, "--json", help="One JSON object per group.")) -> None:
        """Every dead-letter topic with its messages by error class."""
        metadata = create_admin(settings.kafka).list_topics(timeout=30)
        groups = sorted(
            name.removeprefix(prefix)
            for name in metadata.topics
            if name.startswith(prefix) and not name.endswith(".reinjected")
        )
        table = Table("group", "dead letters", "reinjected", "by error class", title="dead-letter topics")
        for group in groups:
            letters = read_dead_letters(settings.kafka, catalogue, group)
            classes = Counter(letter.error_name for letter in letters)
            if as_json:
                reinjected = sum(letter.reinjected for letter in letters)
                row = {"group": group, "dead_letters": len(letters), "reinjected": reinjected}
                print(json.dumps({**row, "by_error_class": dict(classes)}))
                continue
            table.add_row(
                group,
                str(len(letters)),
                str(sum(letter.reinjected for letter in letters)),
                ", ".join(f"{name} {count}" for name, count in classes.most_common()),
            )
        if not as_json:
            console.print(table)
        if not groups and not as_json:
            console.print("No dead-letter topics: nothing has failed to decode.")

    @app.command("show")
    def show(
        group: str = _GROUP,
        error_class: str | None = _CLASS,
        key: str | None = _KEY,
        as_json: bool = typer.Option(False, "--json", help="One JSON object per dead letter."),
    ) -> None:
        """Each dead letter: where it came from, why it failed, whether it was reinjected."""
        letters = read_dead_letters(settings.kafka, catalogue, group, error_class=error_class, key=key)
        if as_json:
            for letter in letters:
                print(json.dumps(_as_dict(letter)))
            return
        table = Table(
            "position", "key", "source", "error", "failed at", "reinjected", title=f"dead letters of {group}"
        )
        for letter in letters:
            row = _as_dict(letter)
            table.add_row(
                letter.position,
                str(row["key"]),
                str(row["source"]),
                f"{letter.error_name}: {letter.error_message}",
                letter.failed_at,
                "yes" if letter.reinjected else "",
            )
        console.print(table)

    @app.command("reinject")
    def reinject_(
        group: str = _GROUP,
        error_class: str | None = _CLASS,
        key: str | None = _KEY,
        execute: bool = typer.Option(False, "--execute", help="Reinject (default: dry run)."),
    ) -> None:
        """Put dead letters back on their original topics (each at most once)."""
        letters = read_dead_letters(settings.kafka, catalogue, group, error_class=error_class, key=key)
        pending = [letter for letter in letters if not letter.reinjected]
        targets = Counter(letter.source_topic for letter in pending)
        for topic, count in sorted(targets.items()):
            console.print(f"{count} dead letter(s) -> {topic}")
        skipped = len(letters) - len(pending)
        if skipped:
            console.print(f"{skipped} already reinjected, skipped.")
        if not execute:
            err_console.print("Dry run: nothing sent. Add --execute to reinject.")
            return
        apply_topics(create_admin(settings.kafka), [ledger_topic(catalogue, group)])
        sent = reinject(create_producer(settings.kafka), catalogue, group, pending)
        err_console.print(f"[green]reinjected {sent} dead letter(s)[/]")

    return app
