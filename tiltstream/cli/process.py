"""``tiltstream process``: run a processing service (a consumer-group member) until SIGTERM.

The processors and their GPU backends are imported inside the commands, so the CLI itself never
imports torch.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from tiltstream.settings import CliSettings

__all__ = ["create_app"]


class Device(StrEnum):
    """Where the builtin backends compute."""

    AUTO = "auto"
    CUDA = "cuda"
    CPU = "cpu"


def _overrides(settings: CliSettings, device: Device, group: str | None, port: int | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"kafka": settings.kafka, "topics": settings.topics, "device": device.value}
    if group:
        fields["group_id"] = group
    if port is not None:
        fields["metrics_port"] = port
    return fields


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``process`` command group."""
    app = typer.Typer(
        help="Run a processing service: motion correction or CTF estimation (any number of instances "
        "share the work in one consumer group; SIGTERM drains).",
        no_args_is_help=True,
    )
    device_option = typer.Option(Device.AUTO, "--device", help="cuda, cpu, or auto (CUDA when present).")
    group_option = typer.Option(None, "--group", help="Consumer group (default: the service's name).")
    port_option = typer.Option(None, "--metrics-port", help="Port of /metrics, /healthz and /readyz.")

    @app.command("motioncorr")
    def motioncorr(
        device: Device = device_option,
        backend: str = typer.Option(None, "--backend", help="builtin or motioncor2 (default: settings)."),
        group: str = group_option,
        metrics_port: int = port_option,
    ) -> None:
        """Motion-correct movies: movie.acquired -> movie.motion-corrected (TILTSTREAM_MOTIONCORR_*)."""
        from tiltstream.processors.motioncorr import MotionCorrectionProcessor, MotionCorrectionSettings
        from tiltstream.processors.runtime import run_service

        fields = _overrides(settings, device, group, metrics_port)
        if backend:
            fields["backend"] = backend
        service_settings = MotionCorrectionSettings(**fields)
        run_service(MotionCorrectionProcessor(service_settings), service_settings)

    @app.command("ctf")
    def ctf(
        device: Device = device_option,
        backend: str = typer.Option(None, "--backend", help="builtin or ctffind (default: settings)."),
        group: str = group_option,
        metrics_port: int = port_option,
    ) -> None:
        """Estimate the CTF: movie.motion-corrected -> micrograph.ctf-estimated (TILTSTREAM_CTF_*)."""
        from tiltstream.processors.ctf import CtfProcessor, CtfSettings
        from tiltstream.processors.runtime import run_service

        fields = _overrides(settings, device, group, metrics_port)
        if backend:
            fields["backend"] = backend
        service_settings = CtfSettings(**fields)
        run_service(CtfProcessor(service_settings), service_settings)

    @app.command("reconstruct")
    def reconstruct(
        device: Device = device_option,
        backend: str = typer.Option(
            None, "--backend", help="builtin, aretomo2 or aretomo3 (default: settings)."
        ),
        group: str = group_option,
        metrics_port: int = port_option,
    ) -> None:
        """Align and reconstruct tilt series -> tomogram.reconstructed (TILTSTREAM_RECONSTRUCT_*)."""
        from tiltstream.processors.reconstruct import ReconstructionProcessor, ReconstructionSettings
        from tiltstream.processors.runtime import run_service

        fields = _overrides(settings, device, group, metrics_port)
        if backend:
            fields["backend"] = backend
        service_settings = ReconstructionSettings(**fields)
        run_service(ReconstructionProcessor(service_settings), service_settings)

    @app.command("denoise")
    def denoise(
        device: Device = device_option, group: str = group_option, metrics_port: int = port_option
    ) -> None:
        """Denoise with Topaz: tomogram.reconstructed -> tomogram.denoised (TILTSTREAM_DENOISE_*)."""
        from tiltstream.processors.denoise import DenoiseProcessor, DenoiseSettings
        from tiltstream.processors.runtime import run_service

        service_settings = DenoiseSettings(**_overrides(settings, device, group, metrics_port))
        run_service(DenoiseProcessor(service_settings), service_settings)

    return app
