"""``tiltstream process``: run a processing service (a consumer-group member) until SIGTERM.

One command per stage of the registry (:data:`tiltstream.stages.REGISTRY`). The processors and their
GPU backends are imported inside the commands, so the CLI itself never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

import typer

from tiltstream.settings import CliSettings
from tiltstream.stages import REGISTRY, Stage, StageRegistry
from tiltstream.streams.catalogue import Catalogue

__all__ = ["create_app", "stage_summary"]


class Device(StrEnum):
    """Where the builtin backends compute."""

    AUTO = "auto"
    CUDA = "cuda"
    CPU = "cpu"


def _carrier(catalogue: Catalogue, record: str) -> str:
    """The topic suffix that carries ``record``, or the record's name when no topic does yet."""
    try:
        return catalogue.for_record(record).name.removeprefix(f"{catalogue.settings.prefix}.")
    except KeyError:
        return record


def stage_summary(stage: Stage, catalogue: Catalogue) -> str:
    """One line for ``--help``: what the stage does, from which topic to which, its settings prefix."""
    outputs = ", ".join(_carrier(catalogue, record) for record in stage.output_records)
    return (
        f"{stage.title}: {_carrier(catalogue, stage.input_record)} -> {outputs} "
        f"({stage.env_prefix}*; {stage.device.value})."
    )


def _run(
    stage: Stage,
    settings: CliSettings,
    device: Device,
    group: str,
    port: int | None,
    backend: str | None = None,
) -> None:
    from tiltstream.processors.runtime import run_service

    fields: dict[str, Any] = {
        "kafka": settings.kafka,
        "topics": settings.topics,
        "device": device.value,
        "group_id": group,
    }
    if port is not None:
        fields["metrics_port"] = port
    if backend:
        fields["backend"] = backend
    service_settings = stage.settings_class()(**fields)
    run_service(stage.processor_class()(service_settings), service_settings)


def _command(stage: Stage, settings: CliSettings) -> Callable[..., None]:
    """The Typer callback of ``tiltstream process <stage>``."""
    device_option = typer.Option(Device.AUTO, "--device", help="cuda, cpu, or auto (CUDA when present).")
    group_option = typer.Option(
        stage.group,
        "--group",
        envvar=f"{stage.env_prefix}GROUP_ID",
        help="Consumer group (its dead-letter topic is <prefix>.dlq.<group>).",
    )
    port_option = typer.Option(None, "--metrics-port", help="Port of /metrics, /healthz and /readyz.")
    if stage.backends:
        backend_option = typer.Option(
            None, "--backend", help=f"{' or '.join(stage.backends)} (default: settings)."
        )

        def with_backend(
            device: Device = device_option,
            backend: str = backend_option,
            group: str = group_option,
            metrics_port: int = port_option,
        ) -> None:
            _run(stage, settings, device, group, metrics_port, backend)

        return with_backend

    def without_backend(
        device: Device = device_option, group: str = group_option, metrics_port: int = port_option
    ) -> None:
        _run(stage, settings, device, group, metrics_port)

    return without_backend


def create_app(settings: CliSettings, registry: StageRegistry = REGISTRY) -> typer.Typer:
    """Build the ``process`` command group: one command per stage of ``registry``."""
    names = ", ".join(registry.names())
    app = typer.Typer(
        help=f"Run a processing service ({names}); any number of instances share the work in one "
        "consumer group; SIGTERM drains.",
        no_args_is_help=True,
    )
    catalogue = Catalogue(settings.topics)
    for stage in registry.stages():
        command = _command(stage, settings)
        command.__doc__ = stage_summary(stage, catalogue)
        app.command(stage.name)(command)
    return app
