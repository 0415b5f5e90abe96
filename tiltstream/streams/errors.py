"""Exceptions of the event backbone."""

from __future__ import annotations

__all__ = ["UndecodableEventError"]


class UndecodableEventError(Exception):
    """Bytes on a topic that cannot be decoded as an event of the catalogue.

    The message names where the bytes came from, so an operator can find them in the dead-letter
    topic: ``topic[partition]@offset: reason``.
    """

    def __init__(
        self,
        reason: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = (
            f"{topic or '?'}[{'?' if partition is None else partition}]@{'?' if offset is None else offset}"
        )
        super().__init__(f"undecodable event at {where}: {reason}")
