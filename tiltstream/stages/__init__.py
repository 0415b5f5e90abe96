"""The stage registry: one declaration per processing stage, and the pipeline's other consumer groups.

Importing it imports no processor: declarations name their classes by module path
(:meth:`~tiltstream.stages.declaration.Stage.processor_class` loads them).
"""

from __future__ import annotations

from tiltstream.stages.builtin import BUILTIN_STAGES, REGISTRY, SERVICE_GROUPS
from tiltstream.stages.declaration import Device, Scope, ServiceGroup, Sizing, Stage
from tiltstream.stages.registry import StageRegistry
from tiltstream.stages.topics import laid_out_topics

__all__ = [
    "BUILTIN_STAGES",
    "REGISTRY",
    "SERVICE_GROUPS",
    "Device",
    "Scope",
    "ServiceGroup",
    "Sizing",
    "Stage",
    "StageRegistry",
    "laid_out_topics",
]
