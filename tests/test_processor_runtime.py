"""The runtime's parts without a broker: failure classes, data roots, atomic outputs, retries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tiltstream.processors.runtime import (
    CorruptInputError,
    DataRoots,
    FailureKind,
    ImpossibleParametersError,
    Job,
    Output,
    PathOutsideRootError,
    Processor,
    RetryPolicy,
    TransientError,
    atomic_path,
    is_transient,
    run_attempts,
)


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError, which the runtime recognises without importing torch."""


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TransientError("busy"), True),
        (OSError(5, "Input/output error"), True),
        (FileNotFoundError("not yet transferred"), True),
        (OutOfMemoryError("CUDA out of memory"), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (MemoryError(), True),
        (CorruptInputError("truncated"), False),
        (PathOutsideRootError("escape"), False),
        (ImpossibleParametersError("0 frames"), False),
        (ValueError("unexpected"), True),  # unknown: retried, bounded
    ],
)
def test_failures_are_classified_by_type(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_data_roots_resolve_inside_and_refuse_escapes(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "s1").mkdir(parents=True)
    (raw / "s1" / "m.tiff").write_bytes(b"x")
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    (raw / "s1" / "link-out.tiff").symlink_to(outside)
    (raw / "s1" / "link-in.tiff").symlink_to(raw / "s1" / "m.tiff")
    roots = DataRoots({"raw": raw})

    assert roots.resolve({"root": "raw", "path": "s1/m.tiff"}) == (raw / "s1" / "m.tiff").resolve()
    assert roots.resolve({"root": "raw", "path": "s1/link-in.tiff"}) == (raw / "s1" / "m.tiff").resolve()
    for bad in ("../secret.txt", "s1/../../secret.txt", "/etc/passwd", "s1/link-out.tiff", ""):
        with pytest.raises(PathOutsideRootError):
            roots.resolve({"root": "raw", "path": bad})
    with pytest.raises(PathOutsideRootError, match="unknown data root"):
        roots.resolve({"root": "elsewhere", "path": "s1/m.tiff"})


def test_output_paths_are_created_inside_the_root(tmp_path: Path) -> None:
    roots = DataRoots({"processed": tmp_path / "processed"})
    (tmp_path / "processed").mkdir()
    data_path, local = roots.output("processed", "cm1/motioncorr/m_001.mrc")
    assert data_path == {"root": "processed", "path": "cm1/motioncorr/m_001.mrc"}
    assert local.parent.is_dir()
    (tmp_path / "processed" / "out").symlink_to(tmp_path)
    with pytest.raises(PathOutsideRootError):
        roots.output("processed", "out/x.mrc")


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "out.mrc"
    final.write_text("old")

    def crash_mid_write() -> None:
        with atomic_path(final) as temporary:
            temporary.write_text("half")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash_mid_write()
    assert final.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.mrc"]  # no temporary left behind
    with atomic_path(final) as temporary:
        assert temporary.suffix == ".mrc"
        temporary.write_text("new")
    assert final.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.mrc"]


class _Flaky(Processor[None]):
    stage = "test"
    input_record = "MovieAcquired"
    output_record = "MovieMotionCorrected"

    def __init__(self, failures: list[BaseException]) -> None:
        super().__init__(DataRoots({}))
        self.failures = failures
        self.calls = 0

    def process(self, job: Job, inputs: Any) -> list[Output]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [Output("MovieMotionCorrected", {"attempt": job.attempt})]


def _job() -> Job:
    return Job(value={"metadata": {"event_id": "e"}}, topic="t", partition=0, offset=0, attempt=1)


def test_transient_errors_are_retried_with_backoff_then_succeed() -> None:
    processor = _Flaky([TransientError("a"), OSError("b")])
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, backoff_initial_seconds=0.01, backoff_max_seconds=1)
    outcome = run_attempts(processor, _job(), policy, on_retry=lambda _e, w: waits.append(w))
    assert outcome.error is None
    assert outcome.outputs == [Output("MovieMotionCorrected", {"attempt": 3})]
    assert waits == [0.01, 0.02]


def test_retries_are_bounded_and_permanent_errors_are_not_retried() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_initial_seconds=0.0, backoff_max_seconds=0.0)
    exhausted = run_attempts(_Flaky([TransientError(str(i)) for i in range(10)]), _job(), policy)
    assert exhausted.failure_kind is FailureKind.RETRIES_EXHAUSTED
    assert exhausted.job.attempt == 3
    permanent_processor = _Flaky([CorruptInputError("bad"), TransientError("never reached")])
    permanent = run_attempts(permanent_processor, _job(), policy)
    assert permanent.failure_kind is FailureKind.PERMANENT
    assert permanent_processor.calls == 1
    assert RetryPolicy(5, 2.0, 5.0).backoff_seconds(4) == 5.0


def test_a_cancelled_job_stops_waiting_for_its_next_attempt() -> None:
    job = _job()
    job.cancelled.set()
    policy = RetryPolicy(max_attempts=3, backoff_initial_seconds=3600, backoff_max_seconds=3600)
    outcome = run_attempts(_Flaky([TransientError("x")]), job, policy)
    assert outcome.cancelled
    assert outcome.failure_kind is None
