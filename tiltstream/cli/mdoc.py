"""``tiltstream mdoc inspect``: what the source would announce for an mdoc, or why it refuses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def _print(report: dict[str, Any]) -> None:
    console.print(f"[bold]{report['file']}[/]: series [bold]{report['series']}[/]")
    if report["refused"] is not None:
        console.print(f"  [red]refused[/]: {report['refused']}")
        return
    console.print(
        f"  writer {report['writer']}, tilt axis {report['tilt_axis_angle_degrees']:g}° "
        f"(from {report['tilt_axis_source']}), pixel {report['pixel_size_angstroms']} Å, "
        f"{report['voltage_kv']:g} kV, {len(report['tilts'])} tilts ({report['distinct_angles']} angles), "
        f"dose weighting {report['dose_weighting']}"
    )
    table = Table("order", "angle °", "dose e/Å²", "dose from", "prior e/Å²", "movie", "acquired (UTC)")
    for t in report["tilts"]:
        dose = t["dose_e_per_angstrom2"]
        table.add_row(
            str(t["order"]),
            f"{t['tilt_angle_degrees']:.2f}",
            "unknown" if dose is None else f"{dose:.3f}",
            t["dose_source"],
            f"{t['prior_dose_e_per_angstrom2']:.3f}",
            t["movie"],
            t["acquired_at_utc"],
        )
    console.print(table)


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``mdoc`` command group."""
    app = typer.Typer(help="Look at mdoc files as the source reads them.", no_args_is_help=True)
    files_arg = typer.Argument(..., exists=True, dir_okay=False, help="The .mdoc files.")
    json_opt = typer.Option(False, "--json", help="One JSON object per file, in a list.")
    set_opt = typer.Option(
        [], "--set", help="A session parameter KEY=VALUE to read with (time_zone, voltage_kv, ...)."
    )

    @app.command("inspect")
    def inspect(
        files: list[Path] = files_arg, as_json: bool = json_opt, assignments: list[str] = set_opt
    ) -> None:
        """Print each file's series name, tilts (angle, order, dose, UTC time), axis and pixel size, or why
        the source refuses it; exit status 1 when any file is refused."""
        # the source reads mdocs through pandas: imported here, so building the CLI stays light
        from tiltstream.connectors.source.parameters import parse_assignments
        from tiltstream.connectors.source.report import describe_mdoc

        try:
            parameters = parse_assignments(assignments)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        reports = [describe_mdoc(path, parameters) for path in files]
        if as_json:
            typer.echo(json.dumps(reports, indent=2))
        else:
            for report in reports:
                _print(report)
        if any(r["refused"] is not None for r in reports):
            raise typer.Exit(1)

    return app
