"""Sample data for the web view's tests: a session's events with real preview files, and a served app.

The events are the ISPyB sink's samples (``connectors/ispyb/samples.py``) completed with the files the
processors write (micrograph thumbnails, drift plots, power spectra, the tomogram and its previews, the
denoised tomogram), made with the processors' own writers from small synthetic images, so that every
image the pages show exists on disk inside the test's data root.
"""

from __future__ import annotations

import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

from tiltstream.connectors.ispyb.samples import SessionEvent, sample, session_events
from tiltstream.connectors.ispyb.settings import IspybSinkSettings
from tiltstream.processors.ctf.outputs import write_power_spectrum_png
from tiltstream.processors.motioncorr.outputs import write_drift_plot
from tiltstream.processors.reconstruct.alignment_files import AlnFile, write_aln, write_tlt, write_xf
from tiltstream.processors.reconstruct.file_names import FILE_SUFFIXES
from tiltstream.processors.reconstruct.outputs import write_alignment_plot
from tiltstream.processors.runtime.output_paths import series_path
from tiltstream.processors.runtime.volume_io import write_mrc, write_png
from tiltstream.relion.project import relion_project_folder, write_series
from tiltstream.relion.tables import series_tables
from tiltstream.settings import CliSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_producer
from tiltstream.streams.producer import EventProducer
from tiltstream.web import WebSettings, create_app

SESSION = "cm40000-1"
TOKEN = "token-of-cm40000-1"
OTHER_TOKEN = "token-of-cm40001-1"
PROPOSAL_TOKEN = "token-of-proposal-cm40000"
DEPTH = 24  # slices of the sample tomograms


def _image(seed: int, size: int = 256) -> np.ndarray:
    """A grey image with a few dark blobs on noise (a stand-in micrograph)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    image = rng.normal(0, 0.3, (size, size))
    for cy, cx, radius in rng.uniform([20, 20, 6], [size - 20, size - 20, 18], (12, 3)):
        image -= np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
    return image.astype(np.float32)


def _spectrum(defocus_angstroms: float, size: int = 256) -> np.ndarray:
    """A power-spectrum diagnostic: noisy Thon rings on the left, the fitted rings on the right."""
    y, x = np.mgrid[-size // 2 : size // 2, -size // 2 : size // 2] / size
    rings = np.sin(math.pi * defocus_angstroms / 1e3 * (x**2 + y**2)) ** 2
    noisy = rings * np.exp(-8 * np.hypot(x, y)) + np.random.default_rng(1).normal(0, 0.08, rings.shape)
    diagnostic = np.where(x < 0, noisy, rings)
    clipped: np.ndarray = np.clip(diagnostic, 0, 1)
    return clipped


def _volume(series: int) -> np.ndarray:
    """A small tomogram: spheres at different heights, so that slices along z differ."""
    rng = np.random.default_rng(series)
    z, y, x = np.mgrid[0:DEPTH, 0:96, 0:96]
    volume = rng.normal(0, 0.2, (DEPTH, 96, 96))
    for cz, cy, cx, radius in rng.uniform([3, 10, 10, 4], [DEPTH - 3, 86, 86, 10], (10, 4)):
        volume -= ((x - cx) ** 2 + (y - cy) ** 2 + ((z - cz) * 2) ** 2 < radius**2) * 1.0
    return volume.astype(np.float32)


def _local(processed: Path, path: str) -> Path:
    local = processed / path
    local.parent.mkdir(parents=True, exist_ok=True)
    return local


#: The samples' volume names (``Position_1.v1<suffix>``) and the reconstruction's (``Position_1<suffix>``).
_VOLUME_SUFFIXES = {".mrc": ".mrc", ".aligned.mrc": "_aligned.mrc", ".denoised.mrc": "_denoised.mrc"}


def _real_layout(value: dict[str, Any]) -> dict[str, Any]:
    """A tomogram event's volumes moved to where the processors write them.

    ``<session>/tomograms/<session>_<series>/v<version>/<series><suffix>``, so that the files beside a
    tomogram and the session's RELION project are found as on a facility's storage.
    """
    meta = value["metadata"]
    for field in ("tomogram", "aligned_stack", "denoised_tomogram"):
        if field in value:
            name, _, rest = value[field]["path"].rsplit("/", 1)[-1].partition(f".v{value['version']}")
            folder = series_path(
                meta["session_id"], meta["tilt_series_id"], "tomograms", f"v{value['version']}"
            )
            value[field] = {"root": "processed", "path": f"{folder}/{name}{_VOLUME_SUFFIXES[rest]}"}
    return value


def _alignment_files(processed: Path, value: dict[str, Any]) -> None:
    """The IMOD and AreTomo files beside the tomogram, written by the reconstruction's writers."""
    stem = str(_local(processed, value["tomogram"]["path"])).removesuffix(FILE_SUFFIXES["tomogram"])
    alignments = sorted(value["tilt_alignments"], key=lambda a: a["nominal_tilt_angle_degrees"])
    angles = np.array([a["refined_tilt_angle_degrees"] for a in alignments])
    shifts = np.array([[-a["shift_x_angstroms"], -a["shift_y_angstroms"]] for a in alignments]) / 5.36
    axis = float(alignments[0]["tilt_axis_angle_degrees"])
    write_xf(Path(stem + FILE_SUFFIXES["imod_xf"]), shifts, axis)
    write_tlt(Path(stem + FILE_SUFFIXES["imod_tlt"]), angles)
    aln = AlnFile(
        section=np.arange(len(alignments)),
        tilt_axis_angle_degrees=np.full(len(alignments), axis),
        shifts_xy_pixels=shifts,
        tilt_angles_degrees=angles,
        raw_size=(96, 96, len(alignments)),
        dark_sections=(),
        alpha_offset_degrees=0.0,
    )
    write_aln(Path(stem + FILE_SUFFIXES["alignment_file"]), aln)


def _relion_projects(processed: Path, events: list[SessionEvent]) -> None:
    """The session's RELION 5 project, written as the reconstruction writes it (``tiltstream.relion``)."""
    requests = {
        (v["metadata"]["tilt_series_id"], v["version"]): v
        for r, v in events
        if r == "ReconstructionRequested"
    }
    for record, value in events:
        if record != "TomogramReconstructed":
            continue
        request = requests[value["metadata"]["tilt_series_id"], value["version"]]
        project = processed / relion_project_folder(value["metadata"]["session_id"])
        write_series(project, series_tables(request, value, lambda data: str(processed / data["path"])))


def _with_files(processed: Path, record: str, value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with its preview paths set and their files written under ``processed``."""
    series = value["metadata"]["tilt_series_id"].rsplit("_", 1)[1]
    if record == "MovieMotionCorrected":
        tilt = int(value["acquisition_order"])
        write_png(
            _local(processed, value["thumbnail"]["path"]), _image(int(series) * 100 + tilt), max_pixels=512
        )
        drift = value["thumbnail"]["path"].replace(".png", "_drift.png")
        shifts = np.array([[s["shift_x_angstroms"], s["shift_y_angstroms"]] for s in value["frame_shifts"]])
        write_drift_plot(_local(processed, drift), shifts, value["micrograph"]["path"])
        value["drift_plot"] = {"root": "processed", "path": drift}
    elif record == "CtfEstimated":
        path = value["micrograph"]["path"].replace("motioncorr", "ctf").replace(".mrc", "_ctf.png")
        write_power_spectrum_png(_local(processed, path), _spectrum(value["defocus_u_angstroms"]))
        value["power_spectrum"] = {"root": "processed", "path": path}
    elif record == "TomogramReconstructed":
        value = _real_layout(value)
        _alignment_files(processed, value)
        volume = _volume(int(series))
        stem = value["tomogram"]["path"].removesuffix(".mrc")
        write_mrc(_local(processed, value["tomogram"]["path"]), volume, 5.36)
        noise = np.random.default_rng(int(series)).normal(0, 0.1, volume.shape).astype(np.float32)
        for field, half in (("tomogram_even", volume / 2 + noise), ("tomogram_odd", volume / 2 - noise)):
            value[field] = {"root": "processed", "path": stem + FILE_SUFFIXES[field]}
            write_mrc(_local(processed, value[field]["path"]), half, 5.36)
        for field, suffix, image in (
            ("central_slice", "_slice.png", volume[DEPTH // 2]),
            ("xy_projection", "_xy.png", volume.sum(axis=0)),
            ("xz_projection", "_xz.png", volume.sum(axis=1)),
        ):
            write_png(_local(processed, stem + suffix), image)
            value[field] = {"root": "processed", "path": stem + suffix}
        alignments = value["tilt_alignments"]
        angles = np.array([a["nominal_tilt_angle_degrees"] for a in alignments])
        shifts = np.array([[a["shift_x_angstroms"], a["shift_y_angstroms"]] for a in alignments])
        order = np.argsort(angles)
        plot = stem + "_alignment.png"
        write_alignment_plot(_local(processed, plot), angles[order], shifts[order], 85.1, stem)
        value["alignment_plot"] = {"root": "processed", "path": plot}
    elif record == "TomogramDenoised":
        value = _real_layout(value)
        volume = _volume(int(series))
        smooth = (volume + np.roll(volume, 1, 1) + np.roll(volume, -1, 1) + np.roll(volume, 1, 2)) / 4
        write_mrc(_local(processed, value["denoised_tomogram"]["path"]), smooth, 5.36)
    return value


def session_with_files(
    processed: Path,
    series: int = 2,
    tilts: int = 5,
    *,
    first_series: int = 1,
    failed_series: int | None = None,
) -> list[SessionEvent]:
    """The sink's sample events of ``series`` tilt series, with every preview file written."""
    events = session_events(
        series, tilts, versions=1, failed_series=failed_series, first_series=first_series, session=SESSION
    )
    for record, value in events:
        if record == "ReconstructionRequested":  # the samples' command lists all 41 tilts
            value["tilts"] = value["tilts"][:tilts]
    completed = [(record, _with_files(processed, record, value)) for record, value in events]
    _relion_projects(processed, completed)
    return completed


def status_event(
    series: int, state: str, tilts: int, *, session: str = SESSION, **changes: Any
) -> dict[str, Any]:
    """A ``TiltSeriesStatus`` of series ``series`` (last tilt a minute ago, written now)."""
    now = datetime.now(UTC)
    value = sample("TiltSeriesStatus", series, tilts - 1, session)
    value["metadata"] = {
        **value["metadata"],
        "event_id": str(uuid.uuid4()),
        "occurred_at": now,
    }
    value.update(
        state=state,
        expected_tilts=tilts,
        acquired_tilts=tilts,
        corrected_tilts=tilts,
        ctf_tilts=tilts,
        first_tilt_at=now - timedelta(minutes=3),
        last_tilt_at=now - timedelta(minutes=1),
        latest_version=1 if state in ("requested", "reconstructed", "denoised") else 0,
    )
    value.update(changes)
    return value


def publish(settings: CliSettings, events: list[SessionEvent]) -> None:
    """Produce ``events`` and wait for the broker's acknowledgements."""
    producer = EventProducer(create_producer(settings.kafka), Catalogue(settings.topics))
    producer.wait([producer.send(record, value) for record, value in events])


def sink_settings(settings: CliSettings, url: str, roots: dict[str, Path]) -> IspybSinkSettings:
    """The ISPyB sink's settings on the test's broker, topics and database."""
    return IspybSinkSettings(
        database_url=url,
        kafka=settings.kafka,
        topics=settings.topics,
        group_id=f"ispyb-{uuid.uuid4().hex[:8]}",
        batch_size=50,
        linger_seconds=0.1,
        roots={name: str(path) for name, path in roots.items()},
        create_visits=url.startswith("sqlite"),  # a demo-like database; on MariaDB the facility's visit
    )


def web_settings(settings: CliSettings, url: str, roots: dict[str, Path], **changes: Any) -> WebSettings:
    """The web view's settings on the test's broker, topics, database and data roots."""
    return WebSettings(
        database_url=url,
        roots=roots,
        tokens={SESSION: TOKEN, "cm40001-1": OTHER_TOKEN, "cm40000": PROPOSAL_TOKEN},
        kafka=settings.kafka,
        topics=settings.topics,
        **changes,
    )


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(settings: WebSettings) -> Iterator[str]:
    """Run the web view with uvicorn in a thread; yield its base address; stop it."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-view", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web view did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
