"""The motion-correction step: ``MovieAcquired`` in, ``MovieMotionCorrected`` out."""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from tiltstream.processors.motioncorr.defects import defect_mask, read_defect_file, replace_defects
from tiltstream.processors.motioncorr.detector import detector_setup
from tiltstream.processors.motioncorr.eer import EerRendering, eer_frames_per_group
from tiltstream.processors.motioncorr.motioncor import MotionCorCommand, fm_int_file_text, run_motioncor
from tiltstream.processors.motioncorr.movie_io import MovieData, read_gain, read_gain_image, read_movie
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
from tiltstream.processors.runtime.input_files import open_regular
from tiltstream.processors.runtime.volume_io import write_mrc, write_png
from tiltstream.streams.events import DataPath, FrameShift, MovieAcquired, MovieMotionCorrected

__all__ = ["MotionCorrectionProcessor", "mean_counts_per_pixel_per_second"]


def mean_counts_per_pixel_per_second(
    summed: np.ndarray,  # (h, w) plain sum of the aligned frames
    frames_summed: int,
    frame_count: int,
    exposure_time_seconds: float,
) -> float | None:
    """The beam's brightness as the detector saw it: mean counts per pixel per second of exposure.

    ``frames_summed`` of the movie's ``frame_count`` frames (EER: electron frames, of which a remainder
    beyond the last whole group is not summed) took that share of ``exposure_time_seconds``. The mean is
    per pixel of ``summed``, whose mean the backends keep when binning. None when the exposure time or a
    frame count is not positive (nothing to divide by).
    """
    if exposure_time_seconds <= 0 or frames_summed <= 0 or frame_count <= 0:
        return None
    seconds = exposure_time_seconds * frames_summed / frame_count
    return float(np.mean(summed, dtype=np.float64)) / seconds


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
    def eer_rendering_of(movie: MovieAcquired, settings: MotionCorrectionSettings) -> EerRendering | None:
        """How an EER movie's frames are grouped and sampled (``None`` for other formats): the session's
        values in the event where set, else the service's (:func:`detector_setup`)."""
        if movie.movie_format.lower() != "eer":
            return None
        detector = detector_setup(movie, settings)
        group = eer_frames_per_group(
            movie.frame_count,
            movie.dose_e_per_angstrom2,
            detector.eer_group_frames,
            detector.eer_dose_per_output_frame_e_per_angstrom2,
            settings.eer_output_frames_without_dose,
        )
        return EerRendering(frames_per_group=group, sampling=detector.eer_sampling)

    @staticmethod
    def parameters_of(movie: MovieAcquired, settings: MotionCorrectionSettings) -> MotionParameters:
        """Backend parameters from the event and the settings; impossible values are refused.

        For EER the frames are the output frames (groups of EER frames), and the pixel is halved at
        2x sampling.
        """
        frames, pixel, dose = movie.frame_count, movie.pixel_size_angstroms, movie.dose_e_per_angstrom2
        if frames < 2 or pixel <= 0 or dose < 0 or movie.voltage_kv <= 0:
            raise ImpossibleParametersError(
                f"cannot correct: frame_count={frames}, pixel_size_angstroms={pixel}, dose={dose}"
            )
        eer = MotionCorrectionProcessor.eer_rendering_of(movie, settings)
        group, sampling = (1, 1) if eer is None else (eer.frames_per_group, eer.sampling)
        return MotionParameters(
            pixel_size_angstroms=pixel / sampling,
            dose_per_frame_e_per_angstrom2=dose / frames * group,
            prior_dose_e_per_angstrom2=movie.prior_dose_e_per_angstrom2,
            voltage_kv=movie.voltage_kv,
            patches_x=settings.patches_x,
            patches_y=settings.patches_y,
            binning=settings.binning,
            dose_weighting=settings.dose_weighting,
            drift_curvature_angstroms=settings.drift_curvature_angstroms,
            local_curvature_angstroms=settings.local_curvature_angstroms,
            # the session's choice (session parameters, carried by the movie) over the service's
            frame_halves=settings.frame_halves if movie.frame_halves is None else movie.frame_halves,
        )

    def load(self, value: dict[str, Any]) -> MovieData | None:
        """Read frames and gain (the builtin backend; MotionCor2 reads its files itself)."""
        if self.settings.backend != "builtin":
            return None
        return self._read(MovieAcquired.from_dict(value))

    def _read(self, movie: MovieAcquired) -> MovieData:
        """Frames and oriented gain; with a defect file, the frames gain-corrected and the gain ``None``."""
        eer = self.eer_rendering_of(movie, self.settings)
        frames = read_movie(self.open_input(movie.movie), movie.movie_format, movie.frame_count, eer)
        detector = detector_setup(movie, self.settings)
        gain = None
        if movie.gain_reference is not None:
            gain = read_gain(
                self.open_input(movie.gain_reference),
                frames.shape[1:],
                detector.gain_rotation_quarter_turns,
                detector.gain_flip,
            )
        if detector.defect_file is not None:
            return MovieData(self._without_defects(frames, gain, detector.defect_file, eer), None)
        return MovieData(frames, gain)

    def _without_defects(
        self,
        frames: np.ndarray,  # (t, h, w) float32, consumed
        gain: np.ndarray | None,  # (h, w)
        defects: DataPath | Path,
        eer: EerRendering | None,
    ) -> np.ndarray:
        """The frames gain-corrected, their defect pixels replaced (:mod:`.defects`); ``(t, h, w)``."""
        stream = self.open_input(defects) if isinstance(defects, DataPath) else open_regular(defects)
        mask = defect_mask(read_defect_file(stream), frames.shape[1:], eer.sampling if eer else 1)
        if gain is not None:
            np.multiply(frames, gain, out=frames)
        return replace_defects(frames, mask)

    def _output(self, movie: MovieAcquired, suffix: str) -> tuple[DataPath, Path]:
        stem = PurePosixPath(movie.movie.path).stem
        return self.series_output_path(movie.metadata, self.settings.output_folder, f"{stem}{suffix}")

    def _correct(self, movie: MovieAcquired, frames: MovieData | None) -> MotionResult:
        parameters = self.parameters_of(movie, self.settings)
        if self.settings.backend == "motioncor2":
            return run_motioncor(
                self._motioncor_command(movie, parameters), self.settings.motioncor_timeout_seconds
            )
        from tiltstream.processors.device import resolve_device
        from tiltstream.processors.motioncorr.builtin import correct_movie_builtin

        if self._device is None:
            self._device = resolve_device(self.settings.device)
        data = frames or self._read(movie)
        return correct_movie_builtin(data.frames, data.gain, parameters, self._device)

    def _motioncor_command(self, movie: MovieAcquired, parameters: MotionParameters) -> MotionCorCommand:
        """MotionCor2's arguments; for EER its ``-FmIntFile`` is written beside the output."""
        settings = self.settings
        _, output = self._output(movie, ".motioncor2.mrc")
        gain, detector = movie.gain_reference, detector_setup(movie, settings)
        defects = detector.defect_file
        eer = self.eer_rendering_of(movie, settings)
        fm_int_file = None
        if eer is not None:
            _, fm_int_file = self._output(movie, ".fmint.txt")
            per_eer_frame = movie.dose_e_per_angstrom2 / movie.frame_count
            with atomic_path(fm_int_file) as temporary:
                temporary.write_text(fm_int_file_text(movie.frame_count, eer.frames_per_group, per_eer_frame))
        return MotionCorCommand(
            executable=settings.motioncor_executable,
            movie=self.resolve(movie.movie),
            movie_format=movie.movie_format.lower(),
            output=output,
            log_dir=output.parent / "motioncor2-logs",
            parameters=parameters,
            gain=self._motioncor_gain(movie, gain) if gain else None,
            gain_rotation_quarter_turns=detector.gain_rotation_quarter_turns,
            gain_flip=detector.gain_flip,
            defect_file=self.resolve(defects) if isinstance(defects, DataPath) else defects,
            eer_sampling=detector.eer_sampling,
            fm_int_file=fm_int_file,
            gpu=settings.motioncor_gpu,
            iterations=settings.motioncor_iterations,
            tolerance_pixels=settings.motioncor_tolerance_pixels,
        )

    def _motioncor_gain(self, movie: MovieAcquired, gain: DataPath) -> Path:
        """The gain file for MotionCor2, which loads float MRC gains only: a TIFF, Falcon ``.gain`` or
        Gatan ``.dm4`` is converted to MRC beside the output first (rows in the stored order, so
        ``-RotGain``/``-FlipGain`` apply as to the original)."""
        if gain.path.lower().endswith((".mrc", ".mrcs")):
            return self.resolve(gain)
        _, converted = self._output(movie, ".gain.mrc")
        write_mrc(converted, read_gain_image(self.open_input(gain)), movie.pixel_size_angstroms)
        return converted

    def _write_outputs(self, movie: MovieAcquired, result: MotionResult) -> dict[str, DataPath | None]:
        """Write micrograph(s), thumbnail, drift plot and trajectory; their data paths by field."""
        micrograph = result.dose_weighted if result.dose_weighted is not None else result.summed
        paths: dict[str, DataPath | None] = {"micrograph_not_dose_weighted": None}
        paths["micrograph"], local = self._output(movie, ".mrc")
        write_mrc(local, micrograph, result.pixel_size_angstroms)
        if result.dose_weighted is not None and self.settings.write_not_dose_weighted:
            paths["micrograph_not_dose_weighted"], local = self._output(movie, ".noDW.mrc")
            write_mrc(local, result.summed, result.pixel_size_angstroms)
        paths |= self._write_halves(movie, result)
        paths["thumbnail"], local = self._output(movie, ".png")
        write_png(local, micrograph, max_pixels=self.settings.thumbnail_pixels)
        paths["drift_plot"], local = self._output(movie, ".drift.png")
        write_drift_plot(local, result.shifts_angstroms, movie.movie.path)
        _, local = self._output(movie, ".drift.csv")  # the trajectory as a file, beside the plot
        with atomic_path(local) as temporary:
            np.savetxt(
                temporary,
                result.shifts_angstroms,
                delimiter=",",
                header="shift_x_angstroms,shift_y_angstroms",
            )
        return paths

    def _write_halves(self, movie: MovieAcquired, result: MotionResult) -> dict[str, DataPath | None]:
        """The even- and odd-frame sums as ``<movie>_EVN.mrc`` / ``_ODD.mrc`` (RELION's and MotionCor2's
        names), when the session (else the settings) asks for them and the backend made both."""
        paths: dict[str, DataPath | None] = {"micrograph_even": None, "micrograph_odd": None}
        wanted = self.parameters_of(movie, self.settings).frame_halves
        if not wanted or result.even_sum is None or result.odd_sum is None:
            return paths
        for field, suffix, half in (
            ("micrograph_even", "_EVN.mrc", result.even_sum),
            ("micrograph_odd", "_ODD.mrc", result.odd_sum),
        ):
            paths[field], local = self._output(movie, suffix)
            write_mrc(local, half, result.pixel_size_angstroms)
        return paths

    def process(self, job: Job, inputs: MovieData | None) -> list[Output]:
        """Correct the movie, write micrograph, thumbnail and drift plot, build the event."""
        start = time.monotonic()
        movie = job.event(MovieAcquired)
        result = self._correct(movie, inputs)
        paths = self._write_outputs(movie, result)
        micrograph = paths["micrograph"]
        assert micrograph is not None
        drift = drift_fields(result.shifts_angstroms)
        frames = len(result.shifts_angstroms)
        event = MovieMotionCorrected(
            metadata=self.output_metadata(job, (movie.movie_id,), self.settings.instance),
            movie_id=movie.movie_id,
            acquisition_order=movie.acquisition_order,
            tilt_angle_degrees=movie.tilt_angle_degrees,
            micrograph=micrograph,
            micrograph_not_dose_weighted=paths["micrograph_not_dose_weighted"],
            thumbnail=paths["thumbnail"],
            drift_plot=paths["drift_plot"],
            pixel_size_angstroms=result.pixel_size_angstroms,
            total_motion_angstroms=drift["total_motion_angstroms"],
            average_motion_per_frame_angstroms=drift["average_motion_per_frame_angstroms"],
            early_motion_angstroms=drift["early_motion_angstroms"],
            late_motion_angstroms=drift["late_motion_angstroms"],
            frame_shifts=tuple(FrameShift.from_dict(shift) for shift in drift["frame_shifts"]),
            first_frame=0,
            last_frame=frames - 1,
            # per output frame (EER: a group of EER frames; the remainder at the end is not in any)
            dose_per_frame_e_per_angstrom2=self.parameters_of(
                movie, self.settings
            ).dose_per_frame_e_per_angstrom2,
            dose_weighted=result.dose_weighted is not None,
            patches_x=result.patches_x,
            patches_y=result.patches_y,
            binning=self.settings.binning,
            backend=result.backend,
            duration_seconds=time.monotonic() - start,
            voltage_kv=movie.voltage_kv,
            spherical_aberration_mm=movie.spherical_aberration_mm,
            amplitude_contrast=movie.amplitude_contrast,
            target_defocus_micrometres=movie.target_defocus_micrometres,
            mean_counts_per_pixel_per_second=self._brightness(movie, result),
            micrograph_even=paths["micrograph_even"],
            micrograph_odd=paths["micrograph_odd"],
        )
        return [Output.of(event)]

    def _brightness(self, movie: MovieAcquired, result: MotionResult) -> float | None:
        """:func:`mean_counts_per_pixel_per_second` of the plain sum (EER: the movie's electron frames)."""
        eer = self.eer_rendering_of(movie, self.settings)
        frames_summed = len(result.shifts_angstroms) * (1 if eer is None else eer.frames_per_group)
        return mean_counts_per_pixel_per_second(
            result.summed, frames_summed, movie.frame_count, movie.exposure_time_seconds
        )
