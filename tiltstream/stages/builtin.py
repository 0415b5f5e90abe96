"""The pipeline's stages and other consumer groups: the one place a stage is declared.

Sizing follows eBIC's Table 1 (Horstmann et al. 2024: instances, CPU and GPUs per service) and the job
lengths measured on the builtin backends (see ``benchmarks/scaling_simulation.py``).
"""

from __future__ import annotations

from tiltstream.stages.declaration import Device, Scope, ServiceGroup, Sizing, Stage
from tiltstream.stages.registry import StageRegistry

__all__ = ["BUILTIN_STAGES", "REGISTRY", "SERVICE_GROUPS"]

_IRIS = "eBIC sends {} to STFC IRIS GPUs once the local ones are all in use."

BUILTIN_STAGES: tuple[Stage, ...] = (
    Stage(
        name="motioncorr",
        title="Motion correction",
        module="tiltstream.processors.motioncorr",
        processor="MotionCorrectionProcessor",
        settings="MotionCorrectionSettings",
        env_prefix="TILTSTREAM_MOTIONCORR_",
        input_record="MovieAcquired",
        output_records=("MovieMotionCorrected",),
        subject_field="movie_id",
        scope=Scope.TILT,
        group="tiltstream-motioncorr",
        device=Device.GPU,
        backends=("builtin", "motioncor2"),
        sizing=Sizing(
            reference="eBIC Table 1 (MotionCor2): up to 8 instances, 0.5-1 CPU, 1 GPU (V100 or P100).",
            job_seconds=4, worst_job_seconds=60, target_wait_seconds=20,
            min_replicas=0, max_replicas=8, fallback_replicas=4, cooldown_seconds=600,
            grace_seconds=120, startup_seconds=300,
            cpu_request="500m", cpu_limit="1", memory_request="8Gi", memory_limit="16Gi",
            burst_max_replicas=4,
            burst_note="Some eBIC motion-correction services submit to a Slurm cluster; here burst pods "
            "run on Slurm-backed virtual nodes.",
        ),
    ),
    Stage(
        name="ctf",
        title="CTF estimation",
        module="tiltstream.processors.ctf",
        processor="CtfProcessor",
        settings="CtfSettings",
        env_prefix="TILTSTREAM_CTF_",
        input_record="MovieMotionCorrected",
        output_records=("CtfEstimated",),
        subject_field="movie_id",
        scope=Scope.TILT,
        group="tiltstream-ctf",
        device=Device.CPU,
        backends=("builtin", "ctffind"),
        sizing=Sizing(
            reference="eBIC Table 1 (CTFFind4): up to 4 instances, 0.25-1 CPU, no GPU.",
            job_seconds=5, worst_job_seconds=30, target_wait_seconds=15,
            min_replicas=1, max_replicas=4, fallback_replicas=2, cooldown_seconds=300,
            grace_seconds=60, startup_seconds=120,
            cpu_request="250m", cpu_limit="1", memory_request="2Gi", memory_limit="4Gi", tmp_size="2Gi",
        ),
    ),
    Stage(
        name="reconstruct",
        title="Tilt-series alignment and reconstruction",
        module="tiltstream.processors.reconstruct",
        processor="ReconstructionProcessor",
        settings="ReconstructionSettings",
        env_prefix="TILTSTREAM_RECONSTRUCT_",
        input_record="ReconstructionRequested",
        output_records=("TomogramReconstructed",),
        subject_field="request_id",
        scope=Scope.SERIES,
        group="tiltstream-reconstruct",
        device=Device.GPU,
        backends=("builtin", "aretomo2", "aretomo3"),
        sizing=Sizing(
            reference="eBIC Table 1 (AreTomo): up to 4 instances, 0.5-1 CPU, 1 GPU (V100 or A100).",
            job_seconds=90, worst_job_seconds=600, target_wait_seconds=90,
            min_replicas=0, max_replicas=4, fallback_replicas=2, cooldown_seconds=900,
            grace_seconds=900, startup_seconds=300,
            cpu_request="500m", cpu_limit="1", memory_request="16Gi", memory_limit="32Gi",
            burst_max_replicas=4, burst_note=_IRIS.format("reconstruction"),
        ),
    ),
    Stage(
        name="denoise",
        title="Tomogram denoising",
        module="tiltstream.processors.denoise",
        processor="DenoiseProcessor",
        settings="DenoiseSettings",
        env_prefix="TILTSTREAM_DENOISE_",
        input_record="TomogramReconstructed",
        output_records=("TomogramDenoised",),
        subject_field="request_id",
        scope=Scope.SERIES,
        group="tiltstream-denoise",
        device=Device.GPU,
        sizing=Sizing(
            reference="eBIC Table 1 (Topaz): up to 2 instances, 0.5-1 CPU, 1 GPU (V100 or A100).",
            job_seconds=60, worst_job_seconds=400, target_wait_seconds=60,
            min_replicas=0, max_replicas=2, fallback_replicas=1, cooldown_seconds=900,
            grace_seconds=600, startup_seconds=300,
            cpu_request="500m", cpu_limit="1", memory_request="16Gi", memory_limit="32Gi",
            burst_max_replicas=2, burst_note=_IRIS.format("denoising"),
        ),
    ),
)  # fmt: skip

#: The consumer groups of the services that are not stages.
SERVICE_GROUPS: tuple[ServiceGroup, ...] = (
    ServiceGroup(
        service="aggregator",
        group="tiltstream-aggregator",
        doc="The tilt-series aggregator (faust app id; TILTSTREAM_AGGREGATOR_APP_ID).",
        failure_stage="aggregate",
        failure_scope=Scope.SERIES,
    ),
    ServiceGroup(
        service="ispyb-sink",
        group="tiltstream-ispyb-sink",
        doc="The ISPyB sink connector (TILTSTREAM_ISPYB_GROUP_ID).",
    ),
)

#: The pipeline's registry: what the CLI, ``up``/``demo``, ``reprocess``, the failures page, the
#: dead-letter topics and the Kubernetes manifests are made from.
REGISTRY = StageRegistry(BUILTIN_STAGES, SERVICE_GROUPS)
