"""Adding a stage is one module, one schema and one declaration: a tilt counter registered here shows up
in the CLI, ``up``/``demo``'s services, ``reprocess``, the dead-letter topics, the failures page and the
Kubernetes manifests, with no other edit."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_helpers import K8S, by_kind, check_crd_object, cli_commands
from tilt_counter_stage import TiltCounterProcessor, TiltCounterSettings
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.k8s.generated import processor_files, write_processor_files
from tiltstream.k8s.render import render_kustomization
from tiltstream.k8s.topics import kafka_topics_yaml
from tiltstream.pipeline import PipelineLayout, pipeline_services
from tiltstream.processors.runtime import Job
from tiltstream.settings import CliSettings, TopicSettings
from tiltstream.stages import REGISTRY, Device, Scope, Sizing, Stage, laid_out_topics
from tiltstream.streams.catalogue import Catalogue
from tiltstream.streams.samples import sample_event
from tiltstream.streams.schema_registry import SchemaRegistry, schemas_directory
from tiltstream.streams.serde import AvroSerde
from tiltstream.web.failures import program_failures
from tiltstream.web.queries import FailedProgram

#: The one declaration the new stage needs.
TILT_COUNTER = Stage(
    name="tiltcount",
    title="Tilt counting",
    module="tilt_counter_stage",
    processor="TiltCounterProcessor",
    settings="TiltCounterSettings",
    env_prefix="TILTSTREAM_TILTCOUNT_",
    input_record="MovieMotionCorrected",
    output_records=("TiltsCounted",),
    subject_field="movie_id",
    scope=Scope.TILT,
    group="tiltstream-tiltcount",
    device=Device.CPU,
    sizing=Sizing(
        reference="A stand-in stage: one small CPU job per corrected movie.",
        job_seconds=0.5, worst_job_seconds=5, target_wait_seconds=5,
        min_replicas=1, max_replicas=2, fallback_replicas=1, cooldown_seconds=300,
        grace_seconds=30, startup_seconds=60,
        cpu_request="100m", cpu_limit="500m", memory_request="256Mi", memory_limit="512Mi", tmp_size="1Gi",
    ),
)  # fmt: skip

BASE = Catalogue(
    TopicSettings(prefix="tiltstream", partitions=12, replication_factor=3, min_insync_replicas=2)
)


@pytest.fixture
def extended() -> Iterator[None]:
    """The registry with the tilt counter, for the test's duration only."""
    with REGISTRY.extended(TILT_COUNTER):
        yield
    assert "tiltcount" not in REGISTRY.names()


@pytest.mark.usefixtures("extended")
def test_the_cli_runs_the_stage_and_reprocess_offers_it() -> None:
    assert ("process", "tiltcount") in cli_commands()
    runner = CliRunner()
    app = create_app(CliSettings())
    help_text = runner.invoke(app, ["process", "tiltcount", "--help"], terminal_width=200).output
    assert "Tilt counting: movie.motion-corrected -> TiltsCounted" in help_text
    assert "tiltstream-tiltcount" in help_text  # the registry's group is the default
    assert "tiltcount" in runner.invoke(app, ["reprocess", "--help"], terminal_width=200).output
    refused = runner.invoke(app, ["reprocess", "cm1:Position_1", "--from", "tiltcounter"])
    assert refused.exit_code != 0
    message = " ".join(refused.output.replace("│", " ").split())  # rich's error box wraps
    assert "choose from motioncorr, ctf, reconstruct, denoise, tiltcount" in message


@pytest.mark.usefixtures("extended")
def test_up_runs_it_and_apply_lays_out_its_dead_letter_topic(tmp_path: Path) -> None:
    catalogue = Catalogue(TopicSettings(prefix="x"))
    assert "x.dlq.tiltstream-tiltcount" in {t.name for t in laid_out_topics(catalogue)}
    layout = PipelineLayout(tmp_path / "raw" / "s", tmp_path / "raw", tmp_path / "processed", tmp_path,
                            "localhost:9092", "sqlite://", "cm1-1")  # fmt: skip
    services = {spec.name: spec for spec in pipeline_services(layout)}
    assert list(services["tiltcount"].argv[-4:-2]) == ["process", "tiltcount"]
    assert "TILTSTREAM_TILTCOUNT_DATA_ROOTS" in services["tiltcount"].env
    assert "x.dlq.tiltstream-tiltcount" in kafka_topics_yaml(catalogue, cluster="c")


@pytest.mark.usefixtures("extended")
def test_the_failures_page_offers_its_reprocess_command() -> None:
    failed = FailedProgram("Position_1", "tiltcount", None, "boom", None)
    unknown = FailedProgram("Position_1", "segment", None, "boom", None)
    known, other = program_failures("cm1-1", [failed, unknown])
    assert known.command == "tiltstream reprocess cm1-1:Position_1 --from tiltcount"
    assert other.command is None


@pytest.mark.usefixtures("extended")
def test_its_manifests_are_generated_and_render(tmp_path: Path) -> None:
    files = processor_files(BASE)
    assert "tiltcount.yaml" in files["base/processors/kustomization.yaml"]
    assert "base/processors/tiltcount.yaml" in files
    assert not any("tiltcount" in path for path in files if path.startswith("overlays/burst"))  # no burst
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    write_processor_files(tree, BASE)
    (tree / "base/kafka/topics.yaml").write_text(kafka_topics_yaml(BASE, cluster="tiltstream"))
    manifests = render_kustomization(tree / "base")
    deployment = by_kind(manifests, "Deployment")["tiltstream-tiltcount"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["tiltstream", "process", "tiltcount"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    scaled = by_kind(manifests, "ScaledObject")["tiltstream-tiltcount"]
    assert check_crd_object(scaled) == []
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert trigger["consumerGroup"] == "tiltstream-tiltcount"
    assert trigger["topic"] == "tiltstream.movie.motion-corrected"
    assert trigger["lagThreshold"] == "10"  # 5 s target wait / 0.5 s jobs
    topics = {t["spec"]["topicName"] for t in by_kind(manifests, "KafkaTopic").values()}
    assert "tiltstream.dlq.tiltstream-tiltcount" in topics


@pytest.mark.usefixtures("extended")
def test_its_processor_and_schema_work(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(schemas_directory(), schemas)
    shutil.copy(Path(__file__).parent / "schemas" / "tiltstream.events.TiltsCounted.avsc", schemas)
    serde = AvroSerde(SchemaRegistry(schemas))
    stage = REGISTRY.stage("tiltcount")
    assert stage.processor_class() is TiltCounterProcessor
    settings = stage.settings_class()()
    assert isinstance(settings, TiltCounterSettings)
    processor = TiltCounterProcessor(settings)
    counts = []
    for tilt in (0, 1, 1):
        value = sample_event("MovieMotionCorrected", series=1, tilt=tilt)
        (output,) = processor.process(Job(value, "t", 0, tilt, 1), None)
        assert output.record == stage.output_records[0]
        decoded = serde.decode(serde.encode(output.record, output.value))
        assert decoded.value["movie_id"] == value["movie_id"]
        assert decoded.value["metadata"]["causation_id"] == value["metadata"]["event_id"]
        counts.append(decoded.value["tilts_counted"])
    assert counts == [1, 2, 2]  # a redelivered tilt is not counted twice
