"""The web view's statistics pages and plots, on the canonical schema written by the real sink and read
as the read-only account."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ispyb_fixtures import make_database
from stats_fixtures import Facility, expected, write_facility
from web_fixtures import OTHER_TOKEN, SESSION, TOKEN, web_settings

from tiltstream.settings import CliSettings
from tiltstream.web import create_app

STAFF = "staff-token"


class _Tables(HTMLParser):
    """Every ``table.stats`` of a page: its grouping, then its rows' cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table" and values.get("class") == "stats":
            self._table = str(values["data-grouping"])
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(str(values["src"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "td" and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    parser.tables = {k: [r for r in rows if r] for k, rows in parser.tables.items()}
    return parser


@pytest.fixture(scope="module")
def facility(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facility]:
    """Both visits of :mod:`stats_fixtures` on a canonical-schema database."""
    for database in make_database(request, "mariadb", tmp_path_factory.mktemp("web-stats")):
        yield write_facility(database)


def _client(facility: Facility, tmp_path: Path, **changes: object) -> TestClient:
    roots = {"raw": tmp_path, "processed": tmp_path}
    settings = web_settings(
        CliSettings(), facility.database.reader_url, roots, follow_status=False, **changes
    )
    return TestClient(create_app(settings))


def _row(rows: list[list[str]], *head: str) -> dict[str, object]:
    (cells,) = [r for r in rows if tuple(r[: len(head)]) == head]
    numbers = [int(c) for c in cells[len(head) : len(head) + 4]]
    return dict(zip(("tilt_series", "movies", "tomograms", "denoised"), numbers, strict=True)) | {
        "failures": cells[len(head) + 4],
        "waiting": cells[len(head) + 5],
    }


def _want(events: list[tuple[str, dict[str, object]]]) -> dict[str, object]:
    found = expected(events)
    seconds = round(found["median_seconds_to_tomogram"])
    failures = ", ".join(f"{s} {n}" for s, n in found["failures"].items()) or "-"
    return {k: found[k] for k in ("tilt_series", "movies", "tomograms", "denoised")} | {
        "failures": failures,
        "waiting": f"{seconds // 60}:{seconds % 60:02d}",
    }


def test_facility_page_needs_the_staff_token_and_shows_every_grouping(
    facility: Facility, tmp_path: Path
) -> None:
    with _client(facility, tmp_path, stats_token=STAFF) as client:
        assert client.get("/stats").status_code == 401
        assert client.get("/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
        page = client.get("/stats", headers={"Authorization": f"Bearer {STAFF}"})
        assert page.status_code == 200
        found = _parse(page.text)
        assert set(found.tables) == {"microscope", "day", "session type", "session"}
        for visit, events in facility.events.items():
            microscope = "m02" if visit == SESSION else "m03"
            assert _row(found.tables["session"], microscope, visit) == _want(events)
        assert _row(found.tables["session type"], "m03", "user")["tomograms"] == 2
        assert _row(found.tables["day"], "m02", "2026-11-25")["tomograms"] == 2
        assert found.images == ["/stats/tomograms.svg"]
        filtered = _parse(
            client.get("/stats?microscope=m03", headers={"Authorization": f"Bearer {STAFF}"}).text
        )
        assert {row[0] for row in filtered.tables["session"]} == {"m03"}
        assert filtered.images == ["/stats/tomograms.svg?microscope=m03"]
        bad = client.get("/stats?since=yesterday", headers={"Authorization": f"Bearer {STAFF}"})
        assert bad.status_code == 422
        assert "not a day" in bad.text


def test_plot_is_an_svg_of_tomograms_per_day_per_microscope(facility: Facility, tmp_path: Path) -> None:
    with _client(facility, tmp_path, stats_token=STAFF) as client:
        client.get(f"/stats?token={STAFF}", follow_redirects=False)  # the cookie, as a browser gets it
        plot = client.get("/stats/tomograms.svg?since=2026-11-01")
        assert plot.status_code == 200
        assert plot.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(plot.content)
        texts = {"".join(n.itertext()).strip() for n in root.iter() if n.tag.endswith("text")}
        assert {"2026-11-25", "2026-11-26", "m02", "m03", "tomograms"} <= texts


def test_session_page_shows_only_that_session(facility: Facility, tmp_path: Path) -> None:
    with _client(facility, tmp_path) as client:
        assert client.get("/stats", headers={"Authorization": f"Bearer {STAFF}"}).status_code == 404  # off
        assert (
            client.get(
                f"/sessions/{SESSION}/stats", headers={"Authorization": f"Bearer {OTHER_TOKEN}"}
            ).status_code
            == 403
        )
        page = client.get(f"/sessions/{SESSION}/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code == 200
        found = _parse(page.text)
        assert [row[:2] for row in found.tables["session"]] == [["m02", SESSION]]
        assert _row(found.tables["microscope"], "m02") == _want(facility.events[SESSION])
        assert found.images == [f"/sessions/{SESSION}/stats.svg"]
        plot = client.get(f"/sessions/{SESSION}/stats.svg", headers={"Authorization": f"Bearer {TOKEN}"})
        texts = {
            "".join(n.itertext()).strip()
            for n in ET.fromstring(plot.content).iter()
            if n.tag.endswith("text")
        }
        assert "m03" not in texts
        assert "2026-11-25" in texts
