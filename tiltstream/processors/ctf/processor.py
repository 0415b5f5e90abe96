"""The CTF step: ``MovieMotionCorrected`` in, ``CtfEstimated`` out."""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from tiltstream.processors.ctf.ctffind import CtffindCommand, detect_ctffind_version, run_ctffind
from tiltstream.processors.ctf.outputs import write_power_spectrum_png
from tiltstream.processors.ctf.result import CtfParameters, CtfResult
from tiltstream.processors.ctf.settings import CtfSettings
from tiltstream.processors.runtime import (
    CorruptInputError,
    DataRoots,
    ImpossibleParametersError,
    Job,
    Output,
    Processor,
)
from tiltstream.processors.runtime.volume_io import read_mrc
from tiltstream.streams.events import CtfEstimated, DataPath, MovieMotionCorrected

__all__ = ["CtfProcessor", "underfocus_angstroms"]


def read_micrograph(stream: IO[bytes]) -> np.ndarray:
    """A 2-D micrograph from the MRC file open in ``stream`` as float32 ``(h, w)`` (``stream`` is closed)."""
    name = getattr(stream, "name", "micrograph")
    data = read_mrc(stream)
    data = data[0] if data.ndim == 3 and data.shape[0] == 1 else data
    if data.ndim != 2 or not np.isfinite(data).all():
        raise CorruptInputError(f"{name}: not a finite 2-D micrograph (shape {data.shape})")
    return data


def underfocus_angstroms(target_defocus_micrometres: float | None) -> float | None:
    """SerialEM's TargetDefocus (negative: underfocus, µm) as this package's defocus (positive, Å)."""
    if target_defocus_micrometres is None or target_defocus_micrometres == 0:
        return None  # 0: not set (a focus target of exactly zero is never used for tomography)
    return -target_defocus_micrometres * 1e4


class CtfProcessor(Processor[np.ndarray]):
    """Fit the CTF of one micrograph; its PNG: ``<session>/<output_folder>/<series>/<stem>.ctf.png``."""

    stage = "ctf"
    input_record = "MovieMotionCorrected"
    output_record = "CtfEstimated"

    def __init__(self, settings: CtfSettings, roots: DataRoots | None = None) -> None:
        super().__init__(roots or DataRoots.from_settings(settings), settings.output_root)
        self.settings = settings
        self._device: Any = None
        self._ctffind_major: int | None = None

    def parameters_of(self, corrected: MovieMotionCorrected) -> CtfParameters:
        """Optics from the event (settings for older events) and search ranges from the settings."""
        s = self.settings
        pixel = corrected.pixel_size_angstroms
        voltage = corrected.voltage_kv or s.default_voltage_kv
        if pixel <= 0 or voltage <= 0 or s.max_resolution_angstroms < 2 * pixel:
            raise ImpossibleParametersError(
                f"cannot fit: pixel {pixel} Å, voltage {voltage} kV, "
                f"max resolution {s.max_resolution_angstroms} Å"
            )
        return CtfParameters(
            pixel_size_angstroms=pixel,
            voltage_kv=float(voltage),
            spherical_aberration_mm=float(
                corrected.spherical_aberration_mm or s.default_spherical_aberration_mm
            ),
            amplitude_contrast=float(corrected.amplitude_contrast or s.default_amplitude_contrast),
            box_size_pixels=s.box_size_pixels,
            min_resolution_angstroms=s.min_resolution_angstroms,
            max_resolution_angstroms=s.max_resolution_angstroms,
            min_defocus_angstroms=s.min_defocus_angstroms,
            max_defocus_angstroms=s.max_defocus_angstroms,
            defocus_step_angstroms=s.defocus_step_angstroms,
            target_defocus_angstroms=underfocus_angstroms(corrected.target_defocus_micrometres),
            target_window_angstroms=s.target_window_angstroms,
        )

    def load(self, value: dict[str, Any]) -> np.ndarray | None:
        """Read the micrograph (the builtin backend; CTFFIND reads the file itself)."""
        if self.settings.backend != "builtin":
            return None
        return read_micrograph(self.open_input(MovieMotionCorrected.from_dict(value).micrograph))

    def _ctffind_version(self) -> int:
        """The configured CTFFIND major version, or the one ``--version`` reports (asked once)."""
        if self.settings.ctffind_version != "auto":
            return int(self.settings.ctffind_version)
        if self._ctffind_major is None:
            self._ctffind_major = detect_ctffind_version(self.settings.ctffind_executable)
        return self._ctffind_major

    def _output(self, corrected: MovieMotionCorrected, suffix: str) -> tuple[DataPath, Path]:
        stem = PurePosixPath(corrected.micrograph.path).stem
        return self.series_output_path(corrected.metadata, self.settings.output_folder, f"{stem}{suffix}")

    def _estimate(self, corrected: MovieMotionCorrected, micrograph: np.ndarray | None) -> CtfResult:
        parameters = self.parameters_of(corrected)
        if self.settings.backend == "ctffind":
            _, diagnostic = self._output(corrected, ".ctffind.mrc")
            command = CtffindCommand(
                self.settings.ctffind_executable,
                self.resolve(corrected.micrograph),
                diagnostic,
                parameters,
                major_version=self._ctffind_version(),
                determine_tilt=self.settings.estimate_sample_tilt,
                determine_thickness=self.settings.estimate_thickness,
            )
            return run_ctffind(command, self.settings.ctffind_timeout_seconds)
        from tiltstream.processors.ctf.builtin import estimate_ctf_builtin
        from tiltstream.processors.device import resolve_device

        if self._device is None:
            self._device = resolve_device(self.settings.device)
        image = (
            micrograph if micrograph is not None else read_micrograph(self.open_input(corrected.micrograph))
        )
        return estimate_ctf_builtin(
            image,
            parameters,
            self._device,
            estimate_thickness=self.settings.estimate_thickness,
            method=self.settings.builtin_method,
        )

    def process(self, job: Job, inputs: np.ndarray | None) -> list[Output]:
        """Fit, write the power-spectrum PNG, build the event."""
        start = time.monotonic()
        corrected = job.event(MovieMotionCorrected)
        result = self._estimate(corrected, inputs)
        spectrum_path = None
        if result.diagnostic is not None:
            spectrum_path, local = self._output(corrected, ".ctf.png")
            write_power_spectrum_png(local, result.diagnostic)
        event = CtfEstimated(
            metadata=self.output_metadata(job, (corrected.movie_id,), self.settings.instance),
            movie_id=corrected.movie_id,
            acquisition_order=corrected.acquisition_order,
            tilt_angle_degrees=corrected.tilt_angle_degrees,
            micrograph=corrected.micrograph,
            defocus_u_angstroms=result.defocus_u_angstroms,
            defocus_v_angstroms=result.defocus_v_angstroms,
            astigmatism_angstroms=result.defocus_u_angstroms - result.defocus_v_angstroms,
            astigmatism_angle_degrees=result.astigmatism_angle_degrees,
            fit_resolution_angstroms=result.fit_resolution_angstroms,
            fit_score=result.fit_score,
            phase_shift_degrees=result.phase_shift_degrees,
            power_spectrum=spectrum_path,
            box_size_pixels=result.box_size_pixels,
            min_resolution_angstroms=self.settings.min_resolution_angstroms,
            max_resolution_angstroms=self.settings.max_resolution_angstroms,
            backend=result.backend,
            duration_seconds=time.monotonic() - start,
            sample_thickness_angstroms=result.sample_thickness_angstroms,
        )
        return [Output.of(event)]
