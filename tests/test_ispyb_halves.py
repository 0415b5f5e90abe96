"""A refused batch written in halves: each good record once, each bad one refused alone, few attempts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from tiltstream.connectors.ispyb.halves import write_in_halves


class Database:
    """Commits a batch of integers unless it holds a bad one; counts the attempts."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.committed: list[int] = []
        self.attempts = 0

    def write(self, batch: Sequence[int]) -> None:
        self.attempts += 1
        found = self.bad.intersection(batch)
        if found:
            raise ValueError(f"refused {min(found)}")
        self.committed += batch


def halves(records: list[int], database: Database) -> tuple[list[int], list[tuple[int, str]]]:
    reasons: list[tuple[int, str]] = []
    refused = write_in_halves(
        records,
        ValueError("the whole batch"),
        database.write,
        lambda record, error: reasons.append((record, str(error))),
        (ValueError,),
    )
    return refused, reasons


@pytest.mark.parametrize("n", [2, 3, 7, 64, 1000])
def test_one_bad_record_costs_logarithmic_attempts(n: int) -> None:
    bad = n // 2
    database = Database({bad})
    refused, reasons = halves(list(range(n)), database)
    assert refused == [bad]
    assert reasons == [(bad, f"refused {bad}")]
    assert sorted(database.committed) == [i for i in range(n) if i != bad]  # each good one once
    assert database.attempts <= 2 * math.ceil(math.log2(n))
    if n >= 64:
        assert database.attempts < n / 4  # writing one by one would take n


def test_several_bad_records_are_each_refused_alone() -> None:
    database = Database({0, 5, 6, 99})
    refused, reasons = halves(list(range(100)), database)
    assert refused == [0, 5, 6, 99]
    assert [record for record, _ in reasons] == refused
    assert sorted(database.committed) == [i for i in range(100) if i not in {0, 5, 6, 99}]


def test_a_single_refused_record_is_not_tried_again() -> None:
    database = Database({4})
    refused, reasons = halves([4], database)
    assert refused == [4]
    assert reasons == [(4, "the whole batch")]
    assert database.attempts == 0


def test_other_errors_propagate() -> None:
    def broken(batch: Sequence[int]) -> None:
        raise OSError("database down")

    with pytest.raises(OSError, match="down"):
        write_in_halves([1, 2], ValueError("x"), broken, lambda *_: None, (ValueError,))
