"""Processors read only regular files, with a read deadline; outputs that cannot be true fail permanently."""

from __future__ import annotations

import math
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tiltstream.processors.runtime import (
    DataRoots,
    FailureKind,
    InputReadTimeoutError,
    Job,
    NotRegularFileError,
    Output,
    Processor,
    RetryPolicy,
    input_files,
    is_transient,
    run_attempts,
)
from tiltstream.processors.runtime.failures import processing_failed
from tiltstream.processors.runtime.input_files import open_regular
from tiltstream.processors.runtime.volume_io import read_mrc, write_mrc
from tiltstream.streams.errors import InvalidEventError
from tiltstream.streams.samples import sample_event
from tiltstream.streams.validation import check_event


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw" / "s1"
    folder.mkdir(parents=True)
    (folder / "movie.mrc").write_bytes(b"not really")
    os.mkfifo(folder / "pipe.tiff")
    (folder / "folder.tiff").mkdir()
    return tmp_path / "raw"


def test_only_regular_files_are_inputs_and_the_refusal_names_path_and_kind(raw: Path) -> None:
    roots = DataRoots({"raw": raw, "dev": "/dev"})
    assert roots.input_file({"root": "raw", "path": "s1/movie.mrc"}) == raw.resolve() / "s1" / "movie.mrc"
    with roots.open_input({"root": "raw", "path": "s1/movie.mrc"}) as handle:
        assert handle.read() == b"not really"
    cases = {
        ("raw", "s1/pipe.tiff"): "a FIFO (named pipe)",
        ("raw", "s1/folder.tiff"): "a directory",
        ("dev", "null"): "a character device",
    }
    for (root, path), kind in cases.items():
        for attempt in (roots.input_file, roots.open_input):
            with pytest.raises(
                NotRegularFileError, match=re.escape(f"{root}:{path} is {kind}, not a regular file")
            ):
                attempt({"root": root, "path": path})
    with pytest.raises(FileNotFoundError):
        roots.input_file({"root": "raw", "path": "s1/absent.tiff"})


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(NotRegularFileError, match="is a socket"):
            DataRoots({"raw": tmp_path}).input_file({"root": "raw", "path": "s.sock"})
        with pytest.raises(NotRegularFileError):
            open_regular(path)


def test_a_fifo_put_in_place_after_the_check_is_refused_on_the_open_descriptor(raw: Path) -> None:
    # open_regular is what open_input calls after input_file: it must not block on a FIFO either
    with pytest.raises(NotRegularFileError, match=re.escape("pipe.tiff is a FIFO")):
        open_regular(raw / "s1" / "pipe.tiff")


def test_reads_are_chunked_and_stop_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    volume = np.random.default_rng(0).random((6, 64, 64), dtype=np.float32)
    write_mrc(tmp_path / "v.mrc", volume, 2.0)
    monkeypatch.setattr(input_files, "CHUNK_BYTES", 4096)  # many reads, each checking the deadline
    np.testing.assert_array_equal(read_mrc(open_regular(tmp_path / "v.mrc", timeout_seconds=60)), volume)
    handle = open_regular(tmp_path / "v.mrc", where="processed:v.mrc", timeout_seconds=60)
    later = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: later)
    with pytest.raises(InputReadTimeoutError, match=re.escape("reading processed:v.mrc took over 60 s")):
        read_mrc(handle)
    assert handle.closed


def test_failure_classes_of_bad_files_and_invalid_events() -> None:
    assert not is_transient(NotRegularFileError("x is a FIFO"))
    assert not is_transient(InvalidEventError("MovieMotionCorrected", "pixel_size_angstroms", "nan"))
    assert is_transient(InputReadTimeoutError("slow mount"))


class _Emits(Processor[None]):
    stage = "motioncorr"
    input_record = "MovieAcquired"
    output_record = "MovieMotionCorrected"

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(DataRoots({}))
        self.value = value
        self.calls = 0

    def process(self, job: Job, inputs: Any) -> list[Output]:
        self.calls += 1
        return [Output(self.output_record, self.value)]


def test_an_output_that_cannot_be_true_ends_in_a_permanent_failure_not_a_crash() -> None:
    bad = {**sample_event("MovieMotionCorrected"), "total_motion_angstroms": math.nan}
    processor = _Emits(bad)
    job = Job(value=sample_event("MovieAcquired"), topic="t", partition=0, offset=7, attempt=1)
    outcome = run_attempts(processor, job, RetryPolicy(max_attempts=3))
    assert (outcome.failure_kind, outcome.outputs, processor.calls) == (FailureKind.PERMANENT, [], 1)
    assert isinstance(outcome.error, InvalidEventError)
    assert outcome.error.field == "total_motion_angstroms"
    failed = processing_failed(
        job,
        outcome.error,
        FailureKind.PERMANENT,
        stage="motioncorr",
        subject=("m", "m", None),
        service="motioncorr",
    )
    check_event("ProcessingFailed", failed.value)  # the failure itself is a valid event
    assert (
        "MovieMotionCorrected.total_motion_angstroms: nan is not a finite number"
        in failed.value["error_message"]
    )
    good = run_attempts(_Emits(sample_event("MovieMotionCorrected")), job, RetryPolicy(max_attempts=3))
    assert good.error is None
    assert len(good.outputs) == 1


def test_a_nul_byte_in_an_error_message_is_escaped_in_the_failure() -> None:
    job = Job(value=sample_event("MovieAcquired"), topic="t", partition=0, offset=7, attempt=1)
    failed = processing_failed(
        job,
        ValueError("bad\x00name"),
        FailureKind.PERMANENT,
        stage="motioncorr",
        subject=("m", "m", None),
        service="motioncorr",
    )
    assert failed.value["error_message"] == "bad\\x00name"
    check_event("ProcessingFailed", failed.value)
