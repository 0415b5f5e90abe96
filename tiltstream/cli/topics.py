"""``tiltstream topics``: lay the topic catalogue out on the cluster and show it.

What is laid out is :func:`tiltstream.stages.laid_out_topics`: the catalogue's topics, the schemas topic
and the dead-letter topic of every consumer group of the stage registry.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from tiltstream.cli._common import console
from tiltstream.settings import CliSettings
from tiltstream.stages import laid_out_topics
from tiltstream.streams.admin import ApplyAction, apply_topics, describe_topics
from tiltstream.streams.catalogue import EVENT_RECORDS, Catalogue
from tiltstream.streams.clients import create_admin, create_producer
from tiltstream.streams.schema_registry import default_registry
from tiltstream.streams.schema_topic import sync_schemas

__all__ = ["create_app"]


def topic_retention(retention_ms: object) -> str:
    """Retention for people: ``forever``, ``30 d`` or empty for compacted topics."""
    if not isinstance(retention_ms, int):
        return ""
    return "forever" if retention_ms == -1 else f"{retention_ms / 86_400_000:g} d"


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``topics`` command group."""
    app = typer.Typer(help="The pipeline's topics: create or update them, list them.", no_args_is_help=True)
    catalogue = Catalogue(settings.topics)

    @app.command("apply")
    def apply(
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change, change nothing."),
    ) -> None:
        """Create missing topics (every group's dead-letter topic too) and bring partitions and
        configuration up to the catalogue."""
        admin = create_admin(settings.kafka)
        changes = apply_topics(admin, laid_out_topics(catalogue), dry_run=dry_run)
        table = Table(
            "topic", "action", "details", title="tiltstream topics apply" + (" (dry run)" if dry_run else "")
        )
        for change in changes:
            style = {"created": "green", "updated": "yellow", "unchanged": "dim"}[change.action.value]
            table.add_row(change.topic, f"[{style}]{change.action.value}[/]", "; ".join(change.details))
        console.print(table)
        published, present = 0, 0
        if not dry_run:
            entries = [e for e in default_registry().known() if e.short_name in EVENT_RECORDS]
            producer = create_producer(settings.kafka)
            published, present = sync_schemas(settings.kafka, producer, catalogue, entries)
            if published:
                console.print(f"Published {published} schema(s) to {catalogue.schemas_topic().name}.")
        if all(c.action is ApplyAction.UNCHANGED for c in changes) and not published:
            console.print(
                f"Nothing to change: all {len(changes)} topics match the catalogue and "
                f"{catalogue.schemas_topic().name} holds all {present} event schemas."
            )
        else:
            counts = {a: sum(c.action is a for c in changes) for a in ApplyAction}
            verb = "would be" if dry_run else "were"
            created, updated = counts[ApplyAction.CREATED], counts[ApplyAction.UPDATED]
            console.print(
                f"{created} {verb} created, {updated} {verb} updated, "
                f"{counts[ApplyAction.UNCHANGED]} unchanged."
            )

    @app.command("list")
    def list_(as_json: bool = typer.Option(False, "--json", help="One JSON object per topic.")) -> None:
        """Show what ``apply`` lays out, and any other dead-letter topic, with their partition counts."""
        admin = create_admin(settings.kafka)
        topics = laid_out_topics(catalogue)
        present = describe_topics(admin, [t.name for t in topics])
        metadata = admin.list_topics(timeout=30)
        known = {t.name for t in topics}
        others = sorted(
            name
            for name in metadata.topics
            if name.startswith(f"{settings.topics.prefix}.dlq.") and name not in known
        )
        rows = []
        for topic in topics + [catalogue.topic(name) for name in others]:
            found = present.get(topic.name) or (
                describe_topics(admin, [topic.name]).get(topic.name) if topic.is_dead_letter else None
            )
            rows.append(
                {
                    "topic": topic.name,
                    "record": topic.record
                    or ("(schema JSON)" if topic.key == "fingerprint" else "(raw bytes)"),
                    "partitions": found.partitions if found else None,
                    "replication_factor": found.replication_factor if found else None,
                    "cleanup_policy": topic.config.get("cleanup.policy"),
                    "retention_ms": int(topic.config["retention.ms"])
                    if "retention.ms" in topic.config
                    else None,
                    "exists": found is not None,
                }
            )
        if as_json:
            for row in rows:
                print(json.dumps(row))
            return
        table = Table(
            "topic", "record", "partitions", "replicas", "cleanup", "retention", title="tiltstream topics"
        )
        for row in rows:
            retention = topic_retention(row["retention_ms"])
            table.add_row(
                str(row["topic"]),
                str(row["record"]),
                str(row["partitions"]) if row["exists"] else "[red]missing[/]",
                str(row["replication_factor"] or ""),
                str(row["cleanup_policy"]),
                retention,
            )
        console.print(table)

    return app
