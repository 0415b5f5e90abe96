"""The pipeline's services on one machine: which ``tiltstream`` commands run, with which settings.

``tiltstream up`` and ``tiltstream demo`` run these under a :class:`~tiltstream.supervisor.Supervisor`,
each in its own process as it would run in its own pod. Every service reads its settings from
``TILTSTREAM_<SERVICE>_*`` variables; this module only fills in where the data live, the cluster,
the database and distinct metrics ports.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tiltstream.stages import REGISTRY, StageRegistry
from tiltstream.supervisor import ServiceSpec

__all__ = ["PipelineLayout", "pipeline_services"]


@dataclass(frozen=True)
class PipelineLayout:
    """Where one machine's pipeline keeps its data and state, and what it connects to.

    Parameters
    ----------
    session_dir
        The microscope's session directory the watcher follows (inside ``raw_root``).
    raw_root, processed_root
        Mount points of the ``raw`` and ``processed`` data roots.
    state_dir
        Aggregator table and service logs.
    bootstrap_servers
        The Kafka cluster.
    database_url
        The ISPyB database (SQLAlchemy URL).
    session_id, microscope
        Names the watcher puts in the events.
    metrics_base_port
        Services listen on consecutive ports from here (0: let each pick a free one).
    detector_root
        When set, ``session_dir`` lies on this detector disk and the watcher copies each movie into
        ``raw_root`` (checksummed) before announcing it, as at a facility.
    extra_env
        More ``TILTSTREAM_*`` settings for every service (device, thresholds, tilt counts ...).
    """

    session_dir: Path
    raw_root: Path
    processed_root: Path
    state_dir: Path
    bootstrap_servers: str
    database_url: str
    session_id: str
    microscope: str = "m01"
    metrics_base_port: int = 9401
    tilts_per_series: int | None = None
    detector_root: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def port(self, index: int) -> str:
        """The metrics port of the ``index``-th service."""
        return "0" if self.metrics_base_port == 0 else str(self.metrics_base_port + index)


def _tiltstream() -> list[str]:
    return [sys.executable, "-m", "tiltstream.cli"]


def pipeline_services(layout: PipelineLayout, registry: StageRegistry = REGISTRY) -> list[ServiceSpec]:
    """The watcher, every stage of ``registry``, the aggregator and the ISPyB sink for ``layout``.

    A stage's service is named after the stage and runs ``tiltstream process <stage>``.
    """
    stages = registry.stages()
    roots = json.dumps({"raw": str(layout.raw_root), "processed": str(layout.processed_root)})
    env = {
        "TILTSTREAM_KAFKA_BOOTSTRAP_SERVERS": layout.bootstrap_servers,
        "TILTSTREAM_ISPYB_DATABASE_URL": layout.database_url,
        "TILTSTREAM_ISPYB_ROOTS": json.dumps(
            {"raw": str(layout.raw_root), "processed": str(layout.processed_root)}
        ),
        "TILTSTREAM_AGGREGATOR_DATADIR": str(layout.state_dir / "aggregator"),
        **{f"{stage.env_prefix}DATA_ROOTS": roots for stage in stages},
        **layout.extra_env,
    }
    cli = _tiltstream()
    watch = [
        *cli,
        "watch",
        str(layout.session_dir),
        "--data-root",
        str(layout.detector_root or layout.raw_root),
        "--root-name",
        "raw",
        "--session-id",
        layout.session_id,
        "--microscope",
        layout.microscope,
        "--metrics-port",
        layout.port(0),
    ]
    if layout.detector_root is not None:
        watch += ["--transfer-to", str(layout.raw_root)]
    if layout.tilts_per_series:
        watch += ["--tilts-per-series", str(layout.tilts_per_series)]
    specs = [ServiceSpec("watch", watch, env)]
    for index, stage in enumerate(stages, start=1):
        command = [*cli, "process", stage.name, "--metrics-port", layout.port(index)]
        specs.append(ServiceSpec(stage.name, command, env))
    specs.append(ServiceSpec("aggregate", [*cli, "aggregate"], env))
    specs.append(ServiceSpec("ispyb-sink", [*cli, "sink", "ispyb", "run"], env))
    return specs
