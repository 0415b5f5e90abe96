"""Exceptions of the event backbone."""

from __future__ import annotations

__all__ = ["InvalidEventError", "UndecodableEventError"]


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


class InvalidEventError(UndecodableEventError):
    """An event that decodes but whose values cannot be true: the field and the reason are named.

    Raised where events are made (the producer refuses to send it) and where they are consumed (the
    consumer runtime dead-letters it like undecodable bytes, so the rest of the partition carries on).
    """

    def __init__(
        self,
        record: str,
        field: str,
        reason: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.record = record
        self.field = field
        super().__init__(f"{record}.{field}: {reason}", topic=topic, partition=partition, offset=offset)
        self.reason = reason
