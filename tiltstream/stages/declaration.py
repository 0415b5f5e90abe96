"""What one stage declaration holds: the stage's code, records, consumer group, device and sizing.

A declaration names its processor and settings classes by module path and attribute name, so reading
the registry imports no processor (and no torch); :meth:`Stage.processor_class` and
:meth:`Stage.settings_class` import them when a service really starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Device", "Scope", "ServiceGroup", "Sizing", "Stage"]


class Device(StrEnum):
    """What a stage computes on in production (one GPU per pod, or CPU only)."""

    GPU = "gpu"
    CPU = "cpu"


class Scope(StrEnum):
    """What one input of a stage is about: one tilt (a movie) or a whole tilt series (a request)."""

    TILT = "tilt"
    SERIES = "series"


@dataclass(frozen=True)
class Sizing:
    """How a stage is sized on Kubernetes (the pods, the KEDA ScaledObject, burst capacity).

    ``lagThreshold`` follows from the job length: about ``lag_threshold`` events wait per replica, so
    ``target_wait_seconds / job_seconds`` (at least 1) keeps the wait of an event near the target.

    Parameters
    ----------
    reference
        Where the numbers come from (eBIC's table of instances, CPU and GPUs per service).
    job_seconds, worst_job_seconds
        A typical and the longest expected job; the grace period after SIGTERM covers the longest.
    target_wait_seconds
        How long an event should wait for a replica in steady state.
    min_replicas, max_replicas, fallback_replicas
        KEDA's bounds, and the count held while Kafka cannot be read.
    cooldown_seconds
        Quiet time before scaling to ``min_replicas``.
    grace_seconds
        ``terminationGracePeriodSeconds``.
    startup_seconds
        Time allowed to start (CUDA, models) before liveness counts.
    cpu_request, cpu_limit, memory_request, memory_limit, tmp_size
        Container resources and the size of its ``/tmp``, in Kubernetes quantities.
    burst_max_replicas, burst_note
        Remote (burst) capacity used only when the local stage is saturated; 0 for none.
    """

    reference: str
    job_seconds: float
    worst_job_seconds: float
    target_wait_seconds: float
    min_replicas: int
    max_replicas: int
    fallback_replicas: int
    cooldown_seconds: int
    grace_seconds: int
    startup_seconds: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    tmp_size: str = "20Gi"
    burst_max_replicas: int = 0
    burst_note: str = ""

    @property
    def lag_threshold(self) -> int:
        """KEDA's ``lagThreshold``: the events one replica is expected to have waiting."""
        return max(1, round(self.target_wait_seconds / self.job_seconds))


@dataclass(frozen=True)
class Stage:
    """One processing stage: ``tiltstream process <name>``, one consumer group, one input record.

    Parameters
    ----------
    name
        The stage's name: its CLI command, its ``ProcessingFailed.stage`` and its ``--from`` choice.
    title
        What it does, for people ("Motion correction").
    module
        The package holding ``processor`` and ``settings`` (imported only when the stage runs).
    processor, settings
        Class names of its :class:`~tiltstream.processors.runtime.Processor` and its settings.
    env_prefix
        Its settings' environment prefix (``TILTSTREAM_MOTIONCORR_``).
    input_record, output_records
        The record it consumes and those it emits (``ProcessingFailed`` aside).
    subject_field
        The input field that tells one input from another (``movie_id``, ``request_id``).
    scope
        Whether one input is one tilt or one whole series.
    group
        Its consumer group (and so its dead-letter topic, ``<prefix>.dlq.<group>``).
    device
        GPU or CPU only.
    sizing
        Kubernetes sizing.
    backends
        Choices of ``--backend``; none when the stage has a single implementation.
    """

    name: str
    title: str
    module: str
    processor: str
    settings: str
    env_prefix: str
    input_record: str
    output_records: tuple[str, ...]
    subject_field: str
    scope: Scope
    group: str
    device: Device
    sizing: Sizing
    backends: tuple[str, ...] = ()

    def processor_class(self) -> type:
        """The processor class, imported now."""
        return self._load(self.processor)

    def settings_class(self) -> type:
        """The settings class, imported now."""
        return self._load(self.settings)

    def _load(self, attribute: str) -> type:
        loaded = getattr(importlib.import_module(self.module), attribute)
        if not isinstance(loaded, type):
            raise TypeError(f"{self.module}.{attribute} is not a class")
        return loaded


@dataclass(frozen=True)
class ServiceGroup:
    """A consumer group that is not a processing stage (the ISPyB sink, the aggregator).

    ``failure_stage`` is the ``stage`` its ``ProcessingFailed`` events carry, if it emits any, and
    ``failure_scope`` what such a failure is about.
    """

    service: str
    group: str
    doc: str
    failure_stage: str | None = None
    failure_scope: Scope = Scope.SERIES
