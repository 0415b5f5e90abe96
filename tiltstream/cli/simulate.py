"""``tiltstream simulate SESSION_DIR``: write a realistic tomography session (movies, mdocs, truth)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tiltstream.cli._common import console, err_console
from tiltstream.settings import CliSettings

if TYPE_CHECKING:
    from tiltstream.connectors.simulator import Fault, SimulatorSettings

__all__ = ["create_app"]


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``simulate`` command."""
    app = typer.Typer()

    @app.command("simulate")
    def simulate(
        session_dir: Annotated[Path, typer.Argument(help="Session directory to write (created if needed).")],
        positions: Annotated[
            int | None, typer.Option(help="PACE positions (series acquired together).")
        ] = None,
        size: Annotated[int | None, typer.Option(help="Frame size in pixels (512 to 4096).")] = None,
        frames: Annotated[int | None, typer.Option(help="Frames per movie.")] = None,
        movie_format: Annotated[str | None, typer.Option("--format", help="tiff (LZW), mrc or eer.")] = None,
        gain: Annotated[
            str | None, typer.Option(help="Gain reference beside the frames: none, mrc, tiff or gain.")
        ] = None,
        gain_rotation: Annotated[
            int | None,
            typer.Option(help="Quarter turns (counter-clockwise) that fit the gain to the frames."),
        ] = None,
        gain_flip: Annotated[
            int | None, typer.Option(help="Flip after the rotation: 0 none, 1 upside down, 2 left-right.")
        ] = None,
        scheme: Annotated[str | None, typer.Option(help="dose-symmetric or bidirectional.")] = None,
        max_tilt: Annotated[float | None, typer.Option(help="Largest tilt angle in degrees.")] = None,
        step: Annotated[float | None, typer.Option(help="Tilt step in degrees.")] = None,
        pixel_size: Annotated[float | None, typer.Option(help="Pixel size in angstroms.")] = None,
        dose: Annotated[float | None, typer.Option(help="Dose per tilt in e/Å².")] = None,
        defocus: Annotated[float | None, typer.Option(help="Target defocus in µm (negative: under).")] = None,
        rate: Annotated[
            float | None, typer.Option(help="Movies per second (0: as fast as possible).")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same session).")] = None,
        session_id: Annotated[str | None, typer.Option(help="Session id [folder name].")] = None,
        microscope: Annotated[str | None, typer.Option(help="Microscope name written in the mdoc.")] = None,
        start_time: Annotated[str | None, typer.Option(help="First tilt's time, ISO 8601, or 'now'.")] = None,
        fault: Annotated[
            list[str] | None,
            typer.Option(
                help="KIND:POSITION[:TILT]: retake, dark, truncated, corrupt, missing, cancel, mdoc-order."
            ),
        ] = None,
    ) -> None:
        """Simulate a tomography session as a microscope writes it.

        Movies appear frame by frame and each series' mdoc grows tilt by tilt.

        ground_truth/ holds what really happened: angles, defocus, drift, shifts, the phantom.
        """
        from tiltstream.connectors.simulator import SimulatorSettings, parse_fault

        given: dict[str, Any] = {
            "positions": positions,
            "size_pixels": size,
            "frames": frames,
            "movie_format": movie_format,
            "gain_reference": gain,
            "gain_rotation_quarter_turns": gain_rotation,
            "gain_flip": gain_flip,
            "scheme": scheme,
            "max_tilt_degrees": max_tilt,
            "tilt_step_degrees": step,
            "pixel_size_angstroms": pixel_size,
            "dose_per_tilt_e_per_angstrom2": dose,
            "target_defocus_micrometres": defocus,
            "rate_movies_per_second": rate,
            "seed": seed,
            "session_id": session_id,
            "microscope": microscope,
        }
        try:
            if start_time is not None:
                given["start_time"] = _start_time(start_time)
            faults = [parse_fault(f) for f in fault or []]
            sim = SimulatorSettings(**{k: v for k, v in given.items() if v is not None})
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
        _simulate_with_progress(session_dir, sim, faults)

    return app


def _start_time(text: str) -> datetime:
    """``now`` (to the second, UTC) or an ISO 8601 time."""
    return datetime.now(UTC).replace(microsecond=0) if text == "now" else datetime.fromisoformat(text)


def _simulate_with_progress(session_dir: Path, sim: SimulatorSettings, faults: list[Fault]) -> None:
    """Write the session with a progress bar of movies written; print what was written."""
    from tiltstream.connectors.simulator import SimulatedMovie, tilt_scheme
    from tiltstream.connectors.simulator import simulate_session as run

    angles = tilt_scheme(
        sim.scheme,
        max_tilt_degrees=sim.max_tilt_degrees,
        step_degrees=sim.tilt_step_degrees,
        group=sim.dose_symmetric_group,
        start_degrees=sim.bidirectional_start_degrees,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"simulating {session_dir.name}", total=sim.positions * len(angles))

        def advance(movie: SimulatedMovie) -> None:
            progress.advance(task)
            progress.update(task, description=f"{movie.position_name} {movie.tilt_angle_degrees:+.1f}°")

        truths = run(session_dir, sim, faults, on_movie=advance)
    movies = sum(len(t.tilts) for t in truths)
    console.print(f"Wrote {movies} movies of {len(truths)} tilt series to {session_dir}.")
