"""``tiltstream process``: run a processing service (a consumer-group member) until SIGTERM.

The processors and their GPU backends are imported inside the commands, so the CLI itself never
imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import typer

from tiltstream.settings import CliSettings

__all__ = ["STAGES", "create_app"]


class Device(StrEnum):
    """Where the builtin backends compute."""

    AUTO = "auto"
    CUDA = "cuda"
    CPU = "cpu"


@dataclass(frozen=True)
class StageCommand:
    """One ``tiltstream process STAGE`` command: where its processor lives and what it says of itself."""

    name: str
    module: str
    processor: str
    settings: str
    summary: str
    backends: str | None = None


STAGES: tuple[StageCommand, ...] = (
    StageCommand(
        "motioncorr", "tiltstream.processors.motioncorr", "MotionCorrectionProcessor",
        "MotionCorrectionSettings",
        "Motion-correct movies: movie.acquired -> movie.motion-corrected (TILTSTREAM_MOTIONCORR_*).",
        "builtin or motioncor2",
    ),
    StageCommand(
        "ctf", "tiltstream.processors.ctf", "CtfProcessor", "CtfSettings",
        "Estimate the CTF: movie.motion-corrected -> micrograph.ctf-estimated (TILTSTREAM_CTF_*).",
        "builtin or ctffind",
    ),
    StageCommand(
        "reconstruct", "tiltstream.processors.reconstruct", "ReconstructionProcessor",
        "ReconstructionSettings",
        "Align and reconstruct tilt series -> tomogram.reconstructed (TILTSTREAM_RECONSTRUCT_*).",
        "builtin, aretomo2 or aretomo3",
    ),
    StageCommand(
        "denoise", "tiltstream.processors.denoise", "DenoiseProcessor", "DenoiseSettings",
        "Denoise with Topaz: tomogram.reconstructed -> tomogram.denoised (TILTSTREAM_DENOISE_*).",
    ),
)  # fmt: skip


def _run(
    stage: StageCommand,
    settings: CliSettings,
    device: Device,
    group: str | None,
    port: int | None,
    backend: str | None = None,
) -> None:
    from tiltstream.processors.runtime import run_service

    fields: dict[str, Any] = {"kafka": settings.kafka, "topics": settings.topics, "device": device.value}
    if group:
        fields["group_id"] = group
    if port is not None:
        fields["metrics_port"] = port
    if backend:
        fields["backend"] = backend
    module = importlib.import_module(stage.module)
    service_settings = getattr(module, stage.settings)(**fields)
    run_service(getattr(module, stage.processor)(service_settings), service_settings)


def create_app(settings: CliSettings) -> typer.Typer:
    """Build the ``process`` command group."""
    app = typer.Typer(
        help="Run a processing service: motion correction, CTF estimation, reconstruction or denoising "
        "(any number of instances share the work in one consumer group; SIGTERM drains).",
        no_args_is_help=True,
    )
    device_option = typer.Option(Device.AUTO, "--device", help="cuda, cpu, or auto (CUDA when present).")
    group_option = typer.Option(None, "--group", help="Consumer group (default: the service's name).")
    port_option = typer.Option(None, "--metrics-port", help="Port of /metrics, /healthz and /readyz.")

    def register(stage: StageCommand) -> None:
        if stage.backends:
            backend_option = typer.Option(None, "--backend", help=f"{stage.backends} (default: settings).")

            def with_backend(
                device: Device = device_option,
                backend: str = backend_option,
                group: str = group_option,
                metrics_port: int = port_option,
            ) -> None:
                _run(stage, settings, device, group, metrics_port, backend)

            command: Callable[..., None] = with_backend
        else:

            def without_backend(
                device: Device = device_option, group: str = group_option, metrics_port: int = port_option
            ) -> None:
                _run(stage, settings, device, group, metrics_port)

            command = without_backend
        command.__doc__ = stage.summary
        app.command(stage.name)(command)

    for stage in STAGES:
        register(stage)
    return app
