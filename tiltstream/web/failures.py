"""The failures page: what failed, why, and the exact command an operator runs about it.

Three sources: stage programs that ended in failure (ISPyB, written by the sink from
``processing.failed``), series whose status is ``failed``, and dead letters of the session's series.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from typing import Any

from tiltstream.settings import KafkaSettings
from tiltstream.stages import REGISTRY, StageRegistry
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.streams.dead_letters import read_dead_letters
from tiltstream.web.models import Failure
from tiltstream.web.queries import FailedProgram

__all__ = ["dead_letter_failures", "program_failures", "reprocess_command", "status_failures"]


def reprocess_command(tilt_series_id: str, stage: str) -> str:
    """``tiltstream reprocess <series> --from <stage>``, quoted for a POSIX shell."""
    return f"tiltstream reprocess {shlex.quote(tilt_series_id)} --from {shlex.quote(stage)}"


#: The sink's failure message starts with the time and the subject (``<time> <id>: <class>: <message>``).
_STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT[\d:]+Z \S+: ")


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def program_failures(
    session: str, programs: list[FailedProgram], registry: StageRegistry = REGISTRY
) -> list[Failure]:
    """One failure per failed stage program, with the ``reprocess`` command when its stage is one of
    ``registry``'s (``reprocess --from`` takes those)."""
    stages = set(registry.names())
    failures = []
    for program in programs:
        known = program.stage in stages
        failures.append(
            Failure(
                source="processing",
                series=program.series,
                stage=program.stage,
                failed_at=_when(program.ended_at),
                error=_STAMPED.sub("", program.message) or "failed (no message recorded)",
                command=reprocess_command(f"{session}:{program.series}", program.stage) if known else None,
                note="add --dry-run first to see what would be re-emitted" if known else None,
            )
        )
    return failures


def status_failures(session: str, statuses: dict[str, dict[str, Any]], already: set[str]) -> list[Failure]:
    """Series in state ``failed`` that no stage failure above explains."""
    failures = []
    for key, status in sorted(statuses.items()):
        name = key.removeprefix(f"{session}:")
        if status["state"] != "failed" or name in already:
            continue
        failures.append(
            Failure(
                source="status",
                series=name,
                stage=None,
                failed_at=_when(status["metadata"]["occurred_at"]),
                error=status.get("message") or "failed",
                command=f"tiltstream events dump processing.failed --from-beginning --key {shlex.quote(key)}",
                note="shows the stage failures behind this state; then reprocess from that stage",
            )
        )
    return failures


def dead_letter_failures(kafka: KafkaSettings, catalogue: Catalogue, session: str) -> list[Failure]:
    """Dead letters of the session's series not reinjected yet, with their ``dlq reinject`` command."""
    prefix = f"{catalogue.settings.prefix}.dlq."
    topics = create_admin(kafka).list_topics(timeout=10).topics
    groups = sorted(
        name.removeprefix(prefix)
        for name in topics
        if name.startswith(prefix) and not name.endswith(".reinjected")
    )
    failures = []
    for group in groups:
        for letter in read_dead_letters(kafka, catalogue, group, timeout=10):
            key = (letter.key or b"").decode(errors="replace")
            if letter.reinjected or not key.startswith(f"{session}:"):
                continue
            failures.append(
                Failure(
                    source="dead-letter",
                    series=key.removeprefix(f"{session}:"),
                    stage=group,
                    failed_at=letter.failed_at or None,
                    error=f"{letter.error_name}: {letter.error_message} "
                    f"({letter.source_topic} {letter.source_partition}/{letter.source_offset})",
                    command=f"tiltstream dlq reinject {shlex.quote(group)} "
                    f"--key {shlex.quote(key)} --execute",
                    note="without --execute it is a dry run; --error-class narrows it",
                )
            )
    return failures
