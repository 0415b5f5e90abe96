"""The web view's JSON API against a real broker and a real ISPyB database written by the real sink."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import pytest
import sqlalchemy as sa
import starfile
from fastapi.testclient import TestClient
from ispyb.sqlalchemy import Tomogram
from ispyb_fixtures import IspybDatabase, make_database
from sqlalchemy.orm import Session
from web_fixtures import (
    DEPTH,
    OTHER_TOKEN,
    PROPOSAL_TOKEN,
    SESSION,
    TOKEN,
    publish,
    session_with_files,
    sink_settings,
    status_event,
    web_settings,
)

from tiltstream.connectors.ispyb.samples import sample
from tiltstream.connectors.ispyb.schema import create_tables
from tiltstream.connectors.ispyb.sink import IspybSink, create_engine
from tiltstream.settings import CliSettings, KafkaSettings, TopicSettings
from tiltstream.streams.admin import apply_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.clients import create_admin
from tiltstream.web.context import WebContext

pytestmark = pytest.mark.kafka

TILTS = 5
OUTLIER = 2  # the tilt the reconstruction of series 1 left out as an alignment outlier
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Served:
    """A web view on a session written to ISPyB by the sink, its statuses on the topic."""

    client: TestClient
    context: WebContext
    processed: Path
    url: str


def _write_session(settings: CliSettings, url: str, roots: dict[str, Path], *, orm_built: bool) -> None:
    """Series 1 and 2 through the whole pipeline (2's last tilt failed), series 3 only acquiring;
    statuses for all three, and a record the sink dead-letters."""
    events = session_with_files(roots["processed"], series=2, tilts=TILTS, failed_series=2)
    events += [("MovieAcquired", sample("MovieAcquired", 3, tilt, SESSION)) for tilt in range(2)]
    poison = sample("MovieAcquired", 7, 0, SESSION)
    poison["movie"] = {"root": "raw", "path": "p" * 300 + ".tiff"}  # longer than Movie.movieFullPath
    events.append(("MovieAcquired", poison))
    request = next(v for r, v in events if r == "ReconstructionRequested" and v["version"] == 1)
    request["tilts"][TILTS - 1]["excluded"] = True
    request["tilts"][TILTS - 1]["exclusion_reason"] = "ctf-fit"
    tomogram = next(
        v for r, v in events if r == "TomogramReconstructed" and v["request_id"] == request["request_id"]
    )
    for alignment in tomogram["tilt_alignments"]:
        alignment.update(neighbour_correlation=0.9, residual_error_angstroms=12.0)
    tomogram["tilt_alignments"][OUTLIER - 1].update(  # the reconstruction left it out itself
        included=False, exclusion_reason="alignment-outlier", neighbour_correlation=None
    )
    statuses = [
        ("TiltSeriesStatus", status_event(1, "denoised", TILTS, excluded_tilts=1)),
        ("TiltSeriesStatus", status_event(2, "failed", TILTS, failed_tilts=1, message="tilt 5 failed")),
        ("TiltSeriesStatus", status_event(3, "acquiring", 2, expected_tilts=41)),
    ]
    publish(settings, events + statuses)
    engine = create_engine(url)
    if orm_built:
        create_tables(engine)
    IspybSink(sink_settings(settings, url, roots), engine=engine).run(until_caught_up=True)
    engine.dispose()


def _serve(
    settings: CliSettings, url: str, tmp_path: Path, reader_url: str | None = None
) -> Iterator[Served]:
    """The web view (reading as ``reader_url``, default ``url``) on what the sink wrote to ``url``."""
    apply_topics(create_admin(settings.kafka), Catalogue(settings.topics).all_topics())
    roots = {"raw": tmp_path / "raw", "processed": tmp_path / "processed"}
    for root in roots.values():
        root.mkdir()
    _write_session(settings, url, roots, orm_built=reader_url is None)
    from tiltstream.web import create_app

    app = create_app(web_settings(settings, reader_url or url, roots))
    with TestClient(app) as client:
        context: WebContext = app.state.context
        assert context.follower is not None
        seen = context.follower.wait_for(
            lambda f: (
                len(f.statuses(SESSION)) == 3
                and f.request(f"{SESSION}:Position_1") is not None
                and f.reconstruction(f"{SESSION}:Position_1") is not None
            ),
            60,
        )
        assert seen, "the web view did not read the status topic"
        yield Served(client, context, roots["processed"], url)


@pytest.fixture(scope="module")
def module_settings(kafka_bootstrap: str) -> CliSettings:
    """Settings on the session's broker with topics of this module's own."""
    return CliSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="tiltstream-test"),
        topics=TopicSettings(prefix=f"t{uuid.uuid4().hex[:10]}", partitions=3),
    )


@pytest.fixture(scope="module")
def served(module_settings: CliSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The web view on SQLite, shared by the tests that only read (the others undo what they change)."""
    directory = tmp_path_factory.mktemp("web-api")
    yield from _serve(module_settings, f"sqlite:///{directory / 'ispyb.sqlite'}", directory)


def test_session_lists_every_series_with_its_live_state(served: Served) -> None:
    view = served.client.get(f"/api/sessions/{SESSION}", headers=AUTH).json()
    assert view["live"] is True
    assert view["microscope"] == "m02"
    series = {s["name"]: s for s in view["series"]}
    assert list(series) == ["Position_1", "Position_2", "Position_3"]
    assert series["Position_1"]["state"] == "denoised"
    # the reconstruction command's, less the tilt the reconstruction left out
    assert series["Position_1"]["used_tilts"] == TILTS - 2
    assert series["Position_1"]["excluded_tilts"] == 2
    assert series["Position_1"]["central_slice_url"].startswith(
        f"/api/sessions/{SESSION}/series/Position_1/images/central-slice.png"
    )
    assert series["Position_2"]["state"] == "failed"
    assert series["Position_2"]["message"] == "tilt 5 failed"
    assert series["Position_3"] == series["Position_3"] | {"state": "acquiring", "acquired_tilts": 2}
    assert series["Position_3"]["central_slice_url"] is None
    assert series["Position_3"]["last_tilt_at"] is not None
    thumbnail = served.client.get(series["Position_1"]["central_slice_url"], headers=AUTH)
    assert thumbnail.status_code == 200
    assert thumbnail.content.startswith(PNG)


def test_series_detail_serves_every_image_and_the_exclusion_reasons(served: Served) -> None:
    detail = served.client.get(f"/api/sessions/{SESSION}/series/Position_1", headers=AUTH).json()
    tilts = detail["tilts"]
    assert [t["number"] for t in tilts] == list(range(1, TILTS + 1))
    assert [t["excluded"] for t in tilts] == [n in {OUTLIER, TILTS} for n in range(1, TILTS + 1)]
    assert tilts[-1]["exclusion_reason"] == "ctf-fit"  # the command's reason
    assert tilts[OUTLIER - 1]["exclusion_reason"] == "alignment-outlier"  # the reconstruction's
    used = [t for t in tilts if not t["excluded"]]
    assert all(t["alignment_correlation"] == 0.9 for t in used)  # from the event
    assert all(t["alignment_residual_angstroms"] == pytest.approx(12.0) for t in used)  # through ISPyB
    assert tilts[OUTLIER - 1]["alignment_residual_angstroms"] is None  # no TiltImageAlignment row
    assert all(t["defocus_micrometres"] and t["fit_resolution_angstroms"] for t in tilts)
    urls = [t[k] for t in tilts for k in ("micrograph_url", "power_spectrum_url", "drift_plot_url")]
    tomogram = detail["tomogram"]
    urls += [tomogram[k] for k in ("central_slice_url", "xy_projection_url", "xz_projection_url")]
    urls.append(tomogram["alignment_plot_url"])
    assert all(urls)
    for url in urls:
        response = served.client.get(url, headers=AUTH)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(PNG)
    # the resolution estimate ISPyB has no column for comes from the reconstruction's own event
    assert (
        tomogram["fsc_resolution_angstroms"]
        == sample("TomogramReconstructed", 1, 0, SESSION)["fsc_resolution_angstroms"]
    )
    assert tomogram["half_tomograms_from"] == "frames"
    volumes = {v["kind"]: v for v in tomogram["volumes"]}
    assert set(volumes) == {"raw", "denoised"}
    assert volumes["raw"]["depth"] == DEPTH
    slices = {}
    for kind in ("raw", "denoised"):
        for z in (3, DEPTH // 2):
            response = served.client.get(volumes[kind]["slice_url_template"].format(z=z), headers=AUTH)
            assert response.status_code == 200
            assert response.content.startswith(PNG)
            slices[kind, z] = response.content
    assert slices["raw", 3] != slices["raw", DEPTH // 2]
    assert slices["raw", 3] != slices["denoised", 3]
    beyond = volumes["raw"]["slice_url_template"].format(z=DEPTH)
    assert served.client.get(beyond, headers=AUTH).status_code == 404
    svg = served.client.get(detail["ctf_plot_url"], headers=AUTH)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count("<circle") == 2 * TILTS  # defocus and resolution of every tilt


def test_series_without_tomogram_and_unknown_series(served: Served) -> None:
    detail = served.client.get(f"/api/sessions/{SESSION}/series/Position_3", headers=AUTH).json()
    assert detail["tomogram"] is None
    assert [t["excluded"] for t in detail["tilts"]] == [None, None]
    assert detail["tilts"][0]["micrograph_url"] is None  # not motion-corrected yet
    missing = served.client.get(f"/api/sessions/{SESSION}/series/Position_9", headers=AUTH)
    assert missing.status_code == 404


def test_failures_name_the_command_to_run(served: Served) -> None:
    failures = served.client.get(f"/api/sessions/{SESSION}/failures", headers=AUTH).json()
    by_source = {f["source"]: f for f in failures}
    assert set(by_source) == {"processing", "dead-letter"}  # series 2's status is explained by its stage
    stage = by_source["processing"]
    assert stage["series"] == "Position_2"
    assert stage["stage"] == "motioncorr"
    assert stage["error"].startswith("CorruptInputError: Position_2_005_")  # no time stamp, no ids
    assert stage["command"] == f"tiltstream reprocess {SESSION}:Position_2 --from motioncorr"
    letter = by_source["dead-letter"]
    assert letter["series"] == "Position_7"
    assert "Movie.movieFullPath holds 255 characters" in letter["error"]
    assert letter["command"].startswith("tiltstream dlq reinject ispyb-")
    assert letter["command"].endswith(f"--key {SESSION}:Position_7 --execute")
    page = served.client.get(f"/sessions/{SESSION}/failures", headers=AUTH)
    assert page.status_code == 200
    assert f"tiltstream reprocess {SESSION}:Position_2 --from motioncorr" in page.text


def test_requests_without_the_sessions_token_are_refused(served: Served) -> None:
    client = served.client
    api = f"/api/sessions/{SESSION}"
    image = f"{api}/series/Position_1/images/central-slice.png"
    for url in (api, f"{api}/series/Position_1", image, f"{api}/failures", f"/sessions/{SESSION}"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.headers["www-authenticate"] == "Bearer"
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get(url, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}).status_code == 403
    assert client.get("/api/sessions/cm40001-1", headers=AUTH).status_code == 403
    proposal = {"Authorization": f"Bearer {PROPOSAL_TOKEN}"}  # opens every session of proposal cm40000
    assert client.get(api, headers=proposal).status_code == 200
    assert client.get("/api/sessions/cm40001-1", headers=proposal).status_code == 403
    assert client.get("/api/sessions/cm40002-1", headers=AUTH).status_code == 403  # no token configured
    assert client.get("/api/sessions/not-a-visit", headers=AUTH).status_code == 404
    # a token in the address sets the session's cookie, drops the token from the address, and opens it
    page = client.get(f"/sessions/{SESSION}?token={TOKEN}", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/sessions/{SESSION}"
    assert "httponly" in page.headers["set-cookie"].lower()
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get(api).status_code == 200  # the cookie now
    assert client.get("/api/sessions/cm40001-1").status_code == 401  # for that session only
    client.cookies.clear()
    assert client.get(f"/sessions/{SESSION}?token=wrong", follow_redirects=False).status_code == 403
    assert client.get(api).status_code == 401


def test_paths_outside_the_data_roots_are_refused(served: Served, tmp_path: Path) -> None:
    client = served.client
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG + b"not for the web")
    outside_link = served.processed / SESSION / "tomograms" / "link.png"
    outside_link.symlink_to(secret)
    image = f"/api/sessions/{SESSION}/series/Position_1/images/central-slice.png"
    engine = create_engine(served.url)
    with Session(engine) as db:
        tomogram_id, recorded = db.execute(
            sa.select(Tomogram.tomogramId, Tomogram.centralSliceImage).where(
                Tomogram.centralSliceImage.like("%/v1/Position_1_slice.png")
            )
        ).one()
    assert client.get(image, headers=AUTH).status_code == 200
    try:
        for path in (
            str(secret),  # absolute, outside
            f"{served.processed}/../secret.png",  # climbs out
            str(outside_link),  # inside, but a link out
            "relative/secret.png",
            f"{served.processed}/{SESSION}/tomograms/missing.png",
        ):
            with Session(engine) as db, db.begin():
                db.execute(
                    sa.update(Tomogram)
                    .where(Tomogram.tomogramId == tomogram_id)
                    .values(centralSliceImage=path)
                )
            response = client.get(image, headers=AUTH)
            assert response.status_code == 404, path
            assert b"not for the web" not in response.content
    finally:  # put it back for the other tests
        with Session(engine) as db, db.begin():
            db.execute(
                sa.update(Tomogram)
                .where(Tomogram.tomogramId == tomogram_id)
                .values(centralSliceImage=recorded)
            )
        engine.dispose()
    # names and numbers from the request are never paths
    for url in (
        f"/api/sessions/{SESSION}/series/..%2F..%2Fsecret/images/central-slice.png",
        f"/api/sessions/{SESSION}/series/../../../secret.png",
        f"/api/sessions/{SESSION}/series/Position_1/images/..%2F..%2Fsecret.png",
        f"/api/sessions/{SESSION}/series/Position_1/tilts/1/..%2Fsecret.png",
        f"/api/sessions/{SESSION}/series/.hidden/ctf.svg",
        "/static/..%2F..%2F..%2Fsecret.png",
        "/static/../api.py",
    ):
        response = client.get(url, headers=AUTH)
        assert response.status_code in (404, 422), url
        assert b"not for the web" not in response.content


def test_token_holder_downloads_the_series_files_and_the_relion_project(
    served: Served, tmp_path: Path
) -> None:
    client = served.client
    tomogram = client.get(f"/api/sessions/{SESSION}/series/Position_1", headers=AUTH).json()["tomogram"]
    downloads = {d["kind"]: d for d in tomogram["downloads"]}
    # the aligned stack was never written in this session: only the files that exist are offered
    assert set(downloads) == {
        "tomogram.mrc",
        "denoised.mrc",
        "alignment.xf",
        "angles.tlt",
        "alignment.aln",
        "tomogram-even.mrc",
        "tomogram-odd.mrc",
    }
    folder = served.processed / SESSION / "tomograms" / f"{SESSION}_Position_1" / "v1"
    for kind, name in (
        ("tomogram.mrc", "Position_1.mrc"),
        ("alignment.xf", "Position_1.xf"),
        ("tomogram-even.mrc", "Position_1_even.mrc"),
        ("tomogram-odd.mrc", "Position_1_odd.mrc"),
    ):
        assert downloads[kind]["file_name"] == name
        response = client.get(downloads[kind]["url"], headers=AUTH)
        assert response.status_code == 200
        assert response.headers["content-disposition"].startswith("attachment")
        assert name in response.headers["content-disposition"]
        assert response.content == (folder / name).read_bytes()
        assert downloads[kind]["size_bytes"] == len(response.content)
    saved = tmp_path / "downloaded.mrc"
    saved.write_bytes(client.get(downloads["tomogram.mrc"]["url"], headers=AUTH).content)
    with mrcfile.open(saved, permissive=False) as volume:
        assert volume.data.shape[0] == DEPTH
    project = client.get(tomogram["relion_project_url"], headers=AUTH)
    assert project.status_code == 200
    assert project.headers["content-type"] == "application/zip"
    assert f"{SESSION}_relion.zip" in project.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(project.content)) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path)
    root = f"{SESSION}_relion"
    assert f"{root}/default_pipeline.star" in names
    assert {f"{root}/Import/job001/tilt_series/{SESSION}_Position_{n}.star" for n in (1, 2)} <= names
    assert not any(".tiltstream" in name for name in names)  # the writer's own records stay behind
    tomograms = starfile.read(tmp_path / root / "Tomograms" / "job006" / "tomograms.star")
    assert list(tomograms["rlnTomoName"]) == [f"{SESSION}_Position_1", f"{SESSION}_Position_2"]
    assert str(folder / "Position_1.mrc") in set(tomograms["rlnTomoReconstructedTomogram"])
    # the session's token only; a series without a tomogram has nothing to download
    for url in (downloads["alignment.xf"]["url"], tomogram["relion_project_url"]):
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}).status_code == 403
    base = f"/api/sessions/{SESSION}/series/Position_3"
    assert client.get(f"{base}/downloads/tomogram.mrc", headers=AUTH).status_code == 404
    assert client.get(f"{base}/relion.zip", headers=AUTH).status_code == 404
    assert client.get(f"{base.replace('3', '1')}/downloads/secret.txt", headers=AUTH).status_code == 422


def test_relion_project_with_a_link_out_of_the_roots_is_refused(served: Served, tmp_path: Path) -> None:
    secret = tmp_path / "secret.star"
    secret.write_text("not for the web")
    link = served.processed / SESSION / "relion" / "Import" / "job001" / "zz_link.star"
    link.symlink_to(secret)
    url = f"/api/sessions/{SESSION}/series/Position_1/relion.zip"
    try:
        response = served.client.get(url, headers=AUTH)
        assert response.status_code == 404
        assert b"not for the web" not in response.content
    finally:
        link.unlink()
    assert served.client.get(url, headers=AUTH).status_code == 200


def test_openapi_documents_the_api(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    paths = set(schema["paths"])
    base = "/api/sessions/{session}"
    assert {
        base,
        f"{base}/events",
        f"{base}/failures",
        f"{base}/series/{{name}}",
        f"{base}/series/{{name}}/ctf.svg",
        f"{base}/series/{{name}}/tilts/{{number}}/{{kind}}.png",
        f"{base}/series/{{name}}/images/{{kind}}.png",
        f"{base}/series/{{name}}/volumes/{{kind}}/slices/{{z}}.png",
        f"{base}/series/{{name}}/downloads/{{kind}}",
        f"{base}/series/{{name}}/relion.zip",
    } == paths
    models = set(schema["components"]["schemas"])
    assert {"SessionView", "SeriesSummary", "SeriesDetail", "TiltView", "TomogramView", "Failure"} <= models


def test_event_stream_sends_current_and_new_statuses(served: Served, module_settings: CliSettings) -> None:
    with served.client.stream("GET", f"/api/sessions/{SESSION}/events", headers=AUTH) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        current = []
        for line in stream.iter_lines():
            if line.startswith("data: "):
                current.append(json.loads(line.removeprefix("data: ")))
            if len(current) == 3:
                break
    assert {s["name"]: s["state"] for s in current} == {
        "Position_1": "denoised",
        "Position_2": "failed",
        "Position_3": "acquiring",
    }
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    with served.client.stream("GET", "/api/sessions/cm40001-1/events", headers=other) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"  # the stream is open: what is produced now comes through
        publish(module_settings, [("TiltSeriesStatus", status_event(4, "acquiring", 1, session="cm40001-1"))])
        data = next(line for line in lines if line.startswith("data: "))
    update = json.loads(data.removeprefix("data: "))
    assert update["tilt_series_id"] == "cm40001-1:Position_4"  # no status of the other session first
    assert update["acquired_tilts"] == 1


@pytest.fixture
def canonical(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IspybDatabase]:
    """Diamond's canonical schema on MariaDB: the sink as ispyb_processing, the view as ispyb_ro_nopii."""
    yield from make_database(request, "mariadb", tmp_path)


def test_on_mariadb(pipeline_settings: CliSettings, canonical: IspybDatabase, tmp_path: Path) -> None:
    for served in _serve(pipeline_settings, canonical.url, tmp_path, canonical.reader_url):
        view = served.client.get(f"/api/sessions/{SESSION}", headers=AUTH).json()
        assert [s["name"] for s in view["series"]] == ["Position_1", "Position_2", "Position_3"]
        detail = served.client.get(f"/api/sessions/{SESSION}/series/Position_1", headers=AUTH).json()
        assert len(detail["tilts"]) == TILTS
        assert detail["tomogram"]["volumes"][0]["depth"] == DEPTH
        url = detail["tilts"][0]["power_spectrum_url"]
        assert served.client.get(url, headers=AUTH).content.startswith(PNG)
        failures = served.client.get(f"/api/sessions/{SESSION}/failures", headers=AUTH).json()
        assert {f["source"] for f in failures} == {"processing", "dead-letter"}
