"""The demo's check against the simulator's truth: per series, how many tilts the pipeline got right.

The demo's microscope is the simulator, which writes what really happened beside the session
(``ground_truth/<position>.json``); this reads the motion and CTF events back from their topics and
compares them (:func:`~tiltstream.connectors.simulator.truth_comparison.series_agreement`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from tiltstream.connectors.simulator.ground_truth import load_ground_truth
from tiltstream.connectors.simulator.session import TRUTH_DIR
from tiltstream.connectors.simulator.truth_comparison import SeriesAgreement, series_agreement
from tiltstream.settings import KafkaSettings
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.reader import StartAt, read_events
from tiltstream.streams.serde import AvroSerde

__all__ = ["agreement_table", "truth_agreements"]


def _by_series(
    settings: KafkaSettings, catalogue: Catalogue, serde: AvroSerde, suffix: str
) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in read_events(settings, [catalogue.topic(suffix)], start=StartAt.BEGINNING, serde=serde):
        if event.value is not None:
            grouped[event.value["metadata"]["tilt_series_id"]].append(event.value)
    return grouped


def truth_agreements(
    settings: KafkaSettings, catalogue: Catalogue, serde: AvroSerde, session_dirs: dict[str, Path]
) -> list[SeriesAgreement]:
    """Every simulated series of the sessions (id: the folder the simulator wrote) against its events."""
    truths = [
        (s, path)
        for s, folder in session_dirs.items()
        for path in sorted((folder / TRUTH_DIR).glob("*.json"))
    ]
    if not truths:
        return []
    motion = _by_series(settings, catalogue, serde, "movie.motion-corrected")
    ctf = _by_series(settings, catalogue, serde, "micrograph.ctf-estimated")
    agreements = []
    for session, path in truths:
        truth = load_ground_truth(path)
        series = f"{session}:{truth.position_name}"
        agreements.append(series_agreement(series, truth, motion.get(series, []), ctf.get(series, [])))
    return agreements


def agreement_table(agreements: list[SeriesAgreement]) -> Table:
    """Per series: tilts within tolerance of the truth (drift <= 0.5 px, defocus <= 5 %, astigmatism)."""
    table = Table(
        "series", "tilts", "drift ≤ 0.5 px", "defocus ≤ 5 %", "astigmatism", "all within",
        title="motion and CTF against the simulator's truth", box=box.SIMPLE,
    )  # fmt: skip
    sessions = {a.tilt_series_id.partition(":")[0] for a in agreements}
    for a in agreements:
        name = a.tilt_series_id.partition(":")[2] if len(sessions) == 1 else a.tilt_series_id
        astigmatism = f"{a.astigmatism_ok}/{a.astigmatism_checked}" if a.astigmatism_checked else "-"
        table.add_row(
            name,
            str(a.tilts),
            str(a.motion_ok),
            str(a.defocus_ok),
            astigmatism,
            f"{a.within_tolerance}/{a.tilts}",
        )
    return table
