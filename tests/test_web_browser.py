"""The web view in a real browser (Debian's chromium driven by Playwright) while a pipeline runs.

The real ISPyB sink follows the topics in a thread and the web view runs under uvicorn on a free loopback
port; the test produces the session's events and statuses as the pipeline would, and watches the session
page change without a reload, then opens a tilt series and moves through the tomogram.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from web_fixtures import (
    DEPTH,
    SESSION,
    TOKEN,
    publish,
    serve,
    session_with_files,
    sink_settings,
    status_event,
    web_settings,
)

from tiltstream.connectors.ispyb.schema import create_tables
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.settings import CliSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin

pytestmark = pytest.mark.kafka

TILTS = 5
WAIT_MS = 30_000
MESSAGE = "tilt 5 failed <img src=x onerror='window.injected=1'>"  # shown as text, never run


def chromium() -> str:
    """Debian's chromium (Playwright's own browser downloads are not used)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the browser tests need Debian's chromium: apt-get install chromium (.ci/run installs it)"
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless chromium for the module."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        yield launched
        launched.close()


def row(page: Page, name: str) -> str:
    return f"#series tbody tr[data-series='{name}']"


def image_loaded(page: Page, selector: str) -> None:
    """Wait until the image ``selector`` has loaded (a broken or missing image never passes)."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
        timeout=WAIT_MS,
    )


def test_session_page_follows_the_pipeline_and_the_series_page_browses_the_tomogram(
    browser: Browser, pipeline_settings: CliSettings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    apply_topics(create_admin(settings.kafka), Catalogue(settings.topics).all_topics())
    roots = {"raw": tmp_path / "raw", "processed": tmp_path / "processed"}
    for root in roots.values():
        root.mkdir()
    url = f"sqlite:///{tmp_path / 'ispyb.sqlite'}"
    engine = create_engine(url)
    create_tables(engine)
    events = session_with_files(roots["processed"], series=3, tilts=TILTS, failed_series=3)

    def of(series: int) -> list[tuple[str, dict[str, object]]]:
        return [(r, v) for r, v in events if v["metadata"]["tilt_series_id"].endswith(f"_{series}")]

    # series 1 is done before anyone looks
    publish(settings, [*of(1), ("TiltSeriesStatus", status_event(1, "denoised", TILTS))])
    stop = threading.Event()
    sink = IspybSink(sink_settings(settings, url, roots), engine=engine)
    sink_thread = threading.Thread(target=sink.run, args=(stop,), name="ispyb-sink", daemon=True)
    sink_thread.start()
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    try:
        with serve(web_settings(settings, url, roots)) as base:
            page.goto(f"{base}/sessions/{SESSION}?token={TOKEN}")
            assert page.url == f"{base}/sessions/{SESSION}"  # the token went into a cookie
            expect(page.locator(row(page, "Position_1"))).to_have_attribute(
                "data-state", "denoised", timeout=WAIT_MS
            )
            image_loaded(page, f"{row(page, 'Position_1')} img.thumb")
            expect(page.locator("#live")).to_have_text("live", timeout=WAIT_MS)
            page.evaluate("window.stillTheSamePage = true")

            _the_pipeline_goes_on(page, settings, of, tmp_path)
            _the_series_page_browses_the_tomogram(page, tmp_path)
            # what failed, and what to run
            page.locator("header nav a", has_text="Failures").click()
            command = page.locator("#failures code.command").first
            expect(command).to_have_text(f"tiltstream reprocess {SESSION}:Position_3 --from motioncorr")
            page.screenshot(path=tmp_path / "failures.png", full_page=True)
    finally:
        page.close()
        stop.set()
        sink_thread.join(30)
        engine.dispose()


def _the_pipeline_goes_on(
    page: Page,
    settings: CliSettings,
    of: Callable[[int], list[tuple[str, dict[str, object]]]],
    tmp_path: Path,
) -> None:
    """Series 2 is acquired, reconstructed and denoised, series 3 fails: the page follows, never reloads."""
    # the pipeline goes on: series 2 is acquired tilt by tilt, then reconstructed and denoised
    publish(settings, [("TiltSeriesStatus", status_event(2, "acquiring", 2, expected_tilts=TILTS))])
    second = page.locator(row(page, "Position_2"))
    expect(second).to_have_attribute("data-state", "acquiring", timeout=WAIT_MS)
    expect(second.locator("td").nth(3)).to_have_text(f"2 / {TILTS}")
    publish(settings, [*of(2), ("TiltSeriesStatus", status_event(2, "denoised", TILTS, excluded_tilts=1))])
    expect(second).to_have_attribute("data-state", "denoised", timeout=WAIT_MS)
    image_loaded(page, f"{row(page, 'Position_2')} img.thumb")  # once the sink has written it
    # and series 3 starts, and its last tilt fails
    publish(
        settings,
        [
            *of(3),
            (
                "TiltSeriesStatus",
                status_event(3, "failed", TILTS, failed_tilts=1, message=MESSAGE),
            ),
        ],
    )
    expect(page.locator(row(page, "Position_3"))).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
    expect(page.locator("#totals")).to_have_text("3 tilt series: 2 denoised, 1 failed")
    expect(page.locator(f"{row(page, 'Position_3')} a", has_text=MESSAGE)).to_have_attribute(
        "href", f"/sessions/{SESSION}/failures"
    )
    assert page.evaluate("window.stillTheSamePage") is True  # no reload
    assert page.evaluate("window.injected") is None
    page.screenshot(path=tmp_path / "session.png", full_page=True)


def _the_series_page_browses_the_tomogram(page: Page, tmp_path: Path) -> None:
    """The tilt series: every tilt's images, the CTF plot, the tomogram and its z slider."""
    # the tilt series: every tilt's images, the CTF plot, the tomogram and its z slider
    page.locator(f"{row(page, 'Position_1')} td.name a").click()
    expect(page.locator("#tilts tbody tr")).to_have_count(TILTS, timeout=WAIT_MS)
    for column in (3, 4, 5):  # micrograph, power spectrum, drift plot
        for number in range(1, TILTS + 1):
            image_loaded(page, f"#tilts tbody tr:nth-child({number}) td:nth-child({column}) img")
    image_loaded(page, "#ctf-plot")
    for preview in ("#xy-projection", "#xz-projection", "#alignment-plot"):
        image_loaded(page, preview)
    slider = page.locator("#z")
    expect(slider).to_have_attribute("max", str(DEPTH - 1))
    raw, denoised = page.locator("#raw-slice"), page.locator("#denoised-slice")
    expect(raw).to_have_attribute("src", re.compile(rf"/volumes/raw/slices/{DEPTH // 2}\.png"))
    image_loaded(page, "#raw-slice")
    image_loaded(page, "#denoised-slice")
    middle = page.evaluate("document.getElementById('raw-slice').currentSrc")
    page.screenshot(path=tmp_path / "series.png", full_page=True)
    slider.fill("3")
    expect(page.locator("#z-value")).to_have_text("3")
    expect(raw).to_have_attribute("src", re.compile(r"/volumes/raw/slices/3\.png"))
    expect(denoised).to_have_attribute("src", re.compile(r"/volumes/denoised/slices/3\.png"))
    image_loaded(page, "#raw-slice")
    image_loaded(page, "#denoised-slice")
    assert page.evaluate("document.getElementById('raw-slice').currentSrc") != middle
    page.screenshot(path=tmp_path / "series-z3.png", full_page=True)
    # the half tomograms' resolution estimate, from the reconstruction's event
    expect(page.locator("#tomogram-info")).to_contain_text("resolution 42.5 Å (FSC 0.143, even/odd frames)")
    # the files to take away: the series' own (with the two half tomograms), and the RELION project
    expect(page.locator("#downloads li")).to_have_count(7)
    with page.expect_download() as saved:
        page.locator("#downloads a", has_text="Position_1.xf").click()
    assert saved.value.suggested_filename == "Position_1.xf"
    transforms = [line.split() for line in Path(saved.value.path()).read_text().splitlines()]
    assert [len(t) for t in transforms] == [6] * TILTS  # A11 A12 A21 A22 DX DY of every aligned tilt
    with page.expect_download() as project:
        page.locator("#relion-link").click()
    assert project.value.suggested_filename == "cm40000-1_relion.zip"
