"""The deterministic ``AutoProcProgram.jobUuid`` of a stage of a tilt series."""

from __future__ import annotations

import uuid

__all__ = ["JOB_UUID_NAMESPACE", "job_uuid"]

#: Namespace of the deterministic ``AutoProcProgram.jobUuid`` values (fixed forever).
JOB_UUID_NAMESPACE = uuid.UUID("0b5f3a52-7d0c-5b1e-9a43-69737079622e")


def job_uuid(tilt_series_id: str, stage: str, key: str = "") -> bytes:
    """The 16-byte ``jobUuid`` of ``stage`` for a tilt series (``key``: the request, per-version stages)."""
    return uuid.uuid5(JOB_UUID_NAMESPACE, f"{tilt_series_id}\x1f{stage}\x1f{key}").bytes
