"""The motion-correction step: ``MovieAcquired`` in, ``MovieMotionCorrected`` out."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from tiltstream.processors.motioncorr.motioncor import MotionCorCommand, run_motioncor
from tiltstream.processors.motioncorr.movie_io import MovieData, read_gain, read_movie
from tiltstream.processors.motioncorr.outputs import write_drift_plot
from tiltstream.processors.motioncorr.result import MotionParameters, MotionResult
from tiltstream.processors.motioncorr.settings import MotionCorrectionSettings
from tiltstream.processors.motioncorr.trajectory import drift_fields
from tiltstream.processors.runtime import (
    DataRoots,
    ImpossibleParametersError,
    Job,
    Output,
    Processor,
    atomic_path,
)
from tiltstream.processors.runtime.output_paths import series_output
from tiltstream.processors.runtime.volume_io import write_mrc, write_png

__all__ = ["MotionCorrectionProcessor"]


class MotionCorrectionProcessor(Processor[MovieData]):
    """Correct one movie with the configured backend and write its outputs.

    Outputs go to ``<output_root>:<session>/<output_folder>/<series>/<movie stem>.*`` — a path that
    depends only on the input, so a redelivered movie overwrites its own results and a movie of the
    same name in another series of the session keeps its own.
    """

    stage = "motioncorr"
    input_record = "MovieAcquired"
    output_record = "MovieMotionCorrected"

    def __init__(self, settings: MotionCorrectionSettings, roots: DataRoots | None = None) -> None:
        super().__init__(roots or DataRoots.from_settings(settings), settings.output_root)
        self.settings = settings
        self._device: Any = None

    @staticmethod
    def parameters_of(value: dict[str, Any], settings: MotionCorrectionSettings) -> MotionParameters:
        """Backend parameters from the event and the settings; impossible values are refused."""
        frames = int(value["frame_count"])
        pixel = float(value["pixel_size_angstroms"])
        dose = float(value["dose_e_per_angstrom2"])
        if frames < 2 or pixel <= 0 or dose < 0 or float(value["voltage_kv"]) <= 0:
            raise ImpossibleParametersError(
                f"cannot correct: frame_count={frames}, pixel_size_angstroms={pixel}, dose={dose}"
            )
        return MotionParameters(
            pixel_size_angstroms=pixel,
            dose_per_frame_e_per_angstrom2=dose / frames,
            prior_dose_e_per_angstrom2=float(value["prior_dose_e_per_angstrom2"]),
            voltage_kv=float(value["voltage_kv"]),
            patches_x=settings.patches_x,
            patches_y=settings.patches_y,
            binning=settings.binning,
            dose_weighting=settings.dose_weighting,
        )

    def load(self, value: dict[str, Any]) -> MovieData | None:
        """Read frames and gain (the builtin backend; MotionCor2 reads its files itself)."""
        if self.settings.backend != "builtin":
            return None
        frames = read_movie(
            self.roots.open_input(value["movie"]), str(value["movie_format"]), int(value["frame_count"])
        )
        gain = None
        if value.get("gain_reference"):
            gain = read_gain(self.roots.open_input(value["gain_reference"]), frames.shape[1:])
        return MovieData(frames, gain)

    def _output(self, value: dict[str, Any], suffix: str) -> tuple[dict[str, str], Any]:
        movie = PurePosixPath(str(value["movie"]["path"]))
        relative = series_output(value, self.settings.output_folder, f"{movie.stem}{suffix}")
        return self.roots.output(self.output_root, relative)

    def _correct(self, value: dict[str, Any], movie: MovieData | None) -> MotionResult:
        parameters = self.parameters_of(value, self.settings)
        if self.settings.backend == "motioncor2":
            _, output = self._output(value, ".motioncor2.mrc")
            gain = value.get("gain_reference")
            command = MotionCorCommand(
                executable=self.settings.motioncor_executable,
                movie=self.roots.input_file(value["movie"]),
                movie_format=str(value["movie_format"]).lower(),
                output=output,
                log_dir=output.parent / "motioncor2-logs",
                parameters=parameters,
                gain=self.roots.input_file(gain) if gain else None,
                gpu=self.settings.motioncor_gpu,
                iterations=self.settings.motioncor_iterations,
                tolerance_pixels=self.settings.motioncor_tolerance_pixels,
            )
            return run_motioncor(command, self.settings.motioncor_timeout_seconds)
        from tiltstream.processors.device import resolve_device
        from tiltstream.processors.motioncorr.builtin import correct_movie_builtin

        if self._device is None:
            self._device = resolve_device(self.settings.device)
        movie = movie or self.load(value)
        assert movie is not None
        return correct_movie_builtin(movie.frames, movie.gain, parameters, self._device)

    def process(self, job: Job, inputs: MovieData | None) -> list[Output]:
        """Correct the movie, write micrograph, thumbnail and drift plot, build the event."""
        start = time.monotonic()
        value = job.value
        result = self._correct(value, inputs)
        micrograph = result.dose_weighted if result.dose_weighted is not None else result.summed
        micrograph_path, local = self._output(value, ".mrc")
        write_mrc(local, micrograph, result.pixel_size_angstroms)
        plain_path = None
        if result.dose_weighted is not None and self.settings.write_not_dose_weighted:
            plain_path, local = self._output(value, ".noDW.mrc")
            write_mrc(local, result.summed, result.pixel_size_angstroms)
        thumbnail_path, local = self._output(value, ".png")
        write_png(local, micrograph, max_pixels=self.settings.thumbnail_pixels)
        plot_path, local = self._output(value, ".drift.png")
        write_drift_plot(local, result.shifts_angstroms, str(value["movie"]["path"]))
        _, local = self._output(value, ".drift.csv")  # the trajectory as a file, beside the plot
        with atomic_path(local) as temporary:
            np.savetxt(
                temporary,
                result.shifts_angstroms,
                delimiter=",",
                header="shift_x_angstroms,shift_y_angstroms",
            )
        frames = len(result.shifts_angstroms)
        event: dict[str, Any] = {
            "metadata": self.output_metadata(job, (value["movie_id"],), self.settings.instance),
            "movie_id": value["movie_id"],
            "acquisition_order": value["acquisition_order"],
            "tilt_angle_degrees": value["tilt_angle_degrees"],
            "micrograph": micrograph_path,
            "micrograph_not_dose_weighted": plain_path,
            "thumbnail": thumbnail_path,
            "drift_plot": plot_path,
            "pixel_size_angstroms": result.pixel_size_angstroms,
            **drift_fields(result.shifts_angstroms),
            "first_frame": 0,
            "last_frame": frames - 1,
            "dose_per_frame_e_per_angstrom2": float(value["dose_e_per_angstrom2"]) / frames,
            "dose_weighted": result.dose_weighted is not None,
            "patches_x": result.patches_x,
            "patches_y": result.patches_y,
            "binning": self.settings.binning,
            "backend": result.backend,
            "duration_seconds": time.monotonic() - start,
            "voltage_kv": value["voltage_kv"],
            "spherical_aberration_mm": value["spherical_aberration_mm"],
            "amplitude_contrast": value["amplitude_contrast"],
        }
        return [Output(self.output_record, event)]
