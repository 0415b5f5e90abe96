"""The stage registry: every processing stage and every other consumer group, declared once.

The CLI's ``process`` commands, ``up``/``demo``'s services, ``reprocess``'s choices, the failures page,
the dead-letter topics and the Kubernetes manifests of the processors are all read from one
:class:`StageRegistry` (:data:`~tiltstream.stages.REGISTRY`). A stage added to it, permanently with
:meth:`StageRegistry.register` or for a while with :meth:`StageRegistry.extended`, appears in all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from tiltstream.stages.declaration import Scope, ServiceGroup, Stage

__all__ = ["StageRegistry"]

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_GROUP = re.compile(r"^[A-Za-z0-9._-]+$")
_PREFIX = re.compile(r"^TILTSTREAM_[A-Z0-9_]+_$")


class StageRegistry:
    """The stages in pipeline order, and the consumer groups of the other services.

    Parameters
    ----------
    stages
        The processing stages, in pipeline order.
    services
        Consumer groups that are not stages.
    """

    def __init__(self, stages: Iterable[Stage] = (), services: Iterable[ServiceGroup] = ()) -> None:
        self._stages: dict[str, Stage] = {}
        self._services = tuple(services)
        for service in self._services:
            if not _GROUP.match(service.group):
                raise ValueError(f"group {service.group!r} of {service.service} cannot name a topic")
        for stage in stages:
            self.register(stage)

    def stages(self) -> tuple[Stage, ...]:
        """Every stage, in pipeline order (registration order)."""
        return tuple(self._stages.values())

    def names(self) -> tuple[str, ...]:
        """Every stage's name, in pipeline order."""
        return tuple(self._stages)

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self._stages[name]
        except KeyError:
            raise KeyError(f"no stage {name!r} (stages: {', '.join(self._stages)})") from None

    def services(self) -> tuple[ServiceGroup, ...]:
        """The consumer groups that are not stages."""
        return self._services

    def service(self, name: str) -> ServiceGroup:
        """The non-stage consumer group of service ``name`` (``ispyb-sink``, ``aggregator``)."""
        for service in self._services:
            if service.service == name:
                return service
        raise KeyError(f"no service {name!r} (services: {', '.join(s.service for s in self._services)})")

    def groups(self) -> tuple[str, ...]:
        """Every consumer group of the pipeline: the stages' then the services'.

        Each of them has a dead-letter topic that ``topics apply`` lays out.
        """
        return (*(s.group for s in self._stages.values()), *(s.group for s in self._services))

    def series_stages(self) -> frozenset[str]:
        """``ProcessingFailed`` stage names whose failure concerns a whole series, not one tilt."""
        stages = {s.name for s in self._stages.values() if s.scope is Scope.SERIES}
        services = {
            s.failure_stage
            for s in self._services
            if s.failure_stage is not None and s.failure_scope is Scope.SERIES
        }
        return frozenset(stages | services)

    def register(self, stage: Stage) -> None:
        """Add ``stage`` after the others; refuse a name or group already taken or unusable."""
        problems = []
        if not _NAME.match(stage.name):
            problems.append(f"name {stage.name!r} is not a command name (a-z, 0-9, '-')")
        if stage.name in self._stages:
            problems.append(f"a stage {stage.name!r} is registered already")
        if not _GROUP.match(stage.group):
            problems.append(f"group {stage.group!r} cannot name a topic (letters, digits, '._-')")
        elif stage.group in self.groups():
            problems.append(f"consumer group {stage.group!r} is taken")
        if not _PREFIX.match(stage.env_prefix):
            problems.append(f"env prefix {stage.env_prefix!r} is not TILTSTREAM_<NAME>_")
        if stage.sizing.min_replicas > stage.sizing.max_replicas:
            problems.append("min_replicas exceeds max_replicas")
        if problems:
            raise ValueError(f"stage {stage.name!r}: " + "; ".join(problems))
        self._stages[stage.name] = stage

    def unregister(self, name: str) -> Stage:
        """Remove the stage called ``name`` and return it."""
        stage = self.stage(name)
        del self._stages[name]
        return stage

    @contextmanager
    def extended(self, *stages: Stage) -> Iterator[StageRegistry]:
        """Register ``stages`` for the duration of a ``with`` block (tests, experiments)."""
        added: list[str] = []
        try:
            for stage in stages:
                self.register(stage)
                added.append(stage.name)
            yield self
        finally:
            for name in reversed(added):
                self.unregister(name)
