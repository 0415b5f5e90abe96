"""``tiltstream stats``: usage statistics from ISPyB (series, tomograms, movies, failures, waiting time)."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa
import typer

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings

__all__ = ["create_app"]


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a day (YYYY-MM-DD)", param_hint="--since") from None


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``stats`` command."""
    app = typer.Typer()

    @app.command("stats")
    def stats(
        since: str | None = typer.Option(
            None, "--since", help="Only tilt series collected from this day on (YYYY-MM-DD)."
        ),
        microscope: str | None = typer.Option(
            None, "--microscope", help="Only this microscope (ISPyB's BLSession.beamLineName)."
        ),
        url: str | None = typer.Option(
            None, "--url", help="ISPyB's SQLAlchemy URL, a read-only account (TILTSTREAM_STATS_DATABASE_URL)."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON object instead of tables."),
    ) -> None:
        """Tilt series, movies, tomograms (reconstructed, denoised), failures by stage and the median time
        from last tilt to tomogram: per microscope, per day, per session type and per session."""
        from tiltstream.connectors.ispyb.sink import create_engine
        from tiltstream.stats.render import stats_json, stats_tables
        from tiltstream.stats.settings import StatsSettings
        from tiltstream.stats.usage import usage_stats

        day = _day(since)
        engine = create_engine(url or StatsSettings().database_url.get_secret_value())
        try:
            found = usage_stats(engine, since=day, microscope=microscope)
        except sa.exc.SQLAlchemyError as error:
            where = engine.url.render_as_string(hide_password=True)
            err_console.print(f"[red]cannot read ISPyB at {where}:[/] {error.__class__.__name__}: {error}")
            raise typer.Exit(1) from error
        finally:
            engine.dispose()
        if as_json:
            print(json.dumps(stats_json(found, since=day, microscope=microscope)))
            return
        for table in stats_tables(found):
            console.print(table)

    return app
