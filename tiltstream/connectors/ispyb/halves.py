"""A refused batch written in halves until only the records the database refuses are left out.

When the database refuses a batch (an integrity or data error, or a record the sink itself rejects), one
bad record must not hold back the others, nor cost one transaction per event. :func:`write_in_halves`
splits the batch in two and writes each half in its own transaction; a half that is refused again is
split again, down to single records, which are handed to ``refuse`` (the sink dead-letters them). Each
good record is thus committed exactly once, and one bad record among ``n`` costs at most
``2 * ceil(log2(n))`` transactions after the refused one, instead of ``n``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["write_in_halves"]

T = TypeVar("T")


def write_in_halves(
    batch: Sequence[T],
    error: BaseException,
    write: Callable[[Sequence[T]], object],
    refuse: Callable[[T, BaseException], None],
    permanent: tuple[type[BaseException], ...],
) -> list[T]:
    """Write ``batch``, refused as a whole with ``error``, half by half; return the records refused alone.

    Parameters
    ----------
    batch
        The records of the refused batch, in order.
    error
        Why the whole batch was refused (the reason given when ``batch`` is a single record).
    write
        Writes its records in one transaction, or raises one of ``permanent`` (and writes nothing).
    refuse
        Called once for each record refused on its own, with the error that refused it.
    permanent
        The errors that mean "the records' fault"; any other error propagates at once.

    Returns
    -------
    list
        The refused records, in batch order.
    """
    if not batch:
        return []
    if len(batch) == 1:
        refuse(batch[0], error)
        return list(batch)
    refused: list[T] = []
    middle = len(batch) // 2
    for half in (batch[:middle], batch[middle:]):
        try:
            write(half)
        except permanent as again:
            refused += write_in_halves(half, again, write, refuse, permanent)
    return refused
