"""``tiltstream schemas``: the event catalogue's schemas, their fingerprints and the evolution gate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from tiltstream.cli._common import console, err_console
from tiltstream.schemas.codegen import GENERATED_MODULE, is_stale, write_module
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import EVENT_RECORDS
from tiltstream.streams.schema_history import check_history, freeze_history
from tiltstream.streams.schema_registry import SchemaRegistry, schemas_directory

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``schemas`` command group."""
    app = typer.Typer(
        help="Event schemas: list, check compatibility, freeze a new version, generate the typed records.",
        no_args_is_help=True,
    )
    dir_opt = typer.Option(None, "--dir", help="A schemas/ folder (default: the installed one).")
    output_opt = typer.Option(GENERATED_MODULE, "--output", help="Where the module goes.")
    check_opt = typer.Option(False, "--check", help="Only report whether the module is stale.")

    def registry(directory: Path | None) -> SchemaRegistry:
        return SchemaRegistry(directory or schemas_directory())

    @app.command("list")
    def list_(directory: Path | None = dir_opt) -> None:
        """Show each event record with its fingerprint and frozen versions."""
        reg = registry(directory)
        table = Table("record", "fingerprint", "fields", "versions", title=str(reg.directory))
        for record in EVENT_RECORDS:
            entry = reg.current(record)
            versions = ", ".join(f"v{v.version}" for v in reg.history(record)) or "-"
            table.add_row(record, f"{entry.fingerprint:016x}", str(len(entry.schema["fields"])), versions)
        console.print(table)

    @app.command("check")
    def check(directory: Path | None = dir_opt) -> None:
        """Fail when a schema is not fully compatible with every frozen version, or is undocumented."""
        report = check_history(registry(directory))
        if report.ok:
            console.print(
                f"[green]ok[/]: {len(EVENT_RECORDS)} event schemas compatible with every frozen version"
            )
            return
        for line in report.lines():
            err_console.print(f"[red]{line}[/]")
        raise typer.Exit(1)

    @app.command("freeze")
    def freeze(directory: Path | None = dir_opt) -> None:
        """Record each changed event schema as its next version in schemas/history/."""
        try:
            written = freeze_history(registry(directory))
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        for path in written:
            console.print(f"wrote {path}")
        if not written:
            console.print("Nothing changed since the last frozen versions.")

    @app.command("generate")
    def generate(
        output: Path = output_opt,
        check: bool = check_opt,
        directory: Path | None = dir_opt,
    ) -> None:
        """Write tiltstream/streams/events.py, the typed records, from the schemas."""
        if check:
            if is_stale(output, registry(directory)):
                err_console.print(f"[red]{output} is stale[/]: run tiltstream schemas generate")
                raise typer.Exit(1)
            console.print(f"[green]ok[/]: {output} matches the schemas")
            return
        changed = write_module(output, registry(directory))
        console.print(f"wrote {output}" if changed else f"unchanged: {output}")

    return app
