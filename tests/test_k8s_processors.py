"""The processors' manifests in k8s/ are the stage registry in code (generated, like the topics)."""

from __future__ import annotations

from pathlib import Path

from k8s_helpers import K8S, by_kind, rendered
from typer.testing import CliRunner

from tiltstream.cli import create_app
from tiltstream.k8s.generated import GENERATED_DIRS, processor_files
from tiltstream.settings import CliSettings, TopicSettings
from tiltstream.stages import REGISTRY
from tiltstream.streams.catalogue import Catalogue

#: The layout the base deploys (as in test_k8s_topics).
BASE = Catalogue(TopicSettings(prefix="tiltstream", partitions=12))


def _committed() -> dict[str, str]:
    return {
        f"{folder}/{path.name}": path.read_text()
        for folder in GENERATED_DIRS
        for path in sorted((K8S / folder).glob("*.yaml"))
    }


def test_committed_processor_manifests_equal_the_generator_output() -> None:
    expected = processor_files(BASE)
    committed = _committed()
    assert set(committed) == set(expected), "stale or missing files: run `tiltstream k8s processors`"
    for path, text in expected.items():
        assert committed[path] == text, (
            f"k8s/{path} is stale: regenerate it with the command in its first lines"
        )


def test_cli_writes_the_committed_files(tmp_path: Path) -> None:
    (tmp_path / GENERATED_DIRS[0]).mkdir(parents=True)
    (tmp_path / GENERATED_DIRS[0] / "removed-stage.yaml").write_text("stale")
    result = CliRunner().invoke(
        create_app(CliSettings()), ["k8s", "processors", "--partitions", "12", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    written = {
        f"{folder}/{path.name}": path.read_text()
        for folder in GENERATED_DIRS
        for path in sorted((tmp_path / folder).glob("*.yaml"))
    }
    assert written == _committed()


def test_every_registry_stage_is_deployed_with_its_group_input_and_bounds() -> None:
    manifests = rendered("base")
    deployments, scaled = by_kind(manifests, "Deployment"), by_kind(manifests, "ScaledObject")
    for stage in REGISTRY.stages():
        name = f"tiltstream-{stage.name}"
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[f"{stage.env_prefix}GROUP_ID"] == stage.group
        trigger = scaled[name]["spec"]["triggers"][0]["metadata"]
        assert trigger["consumerGroup"] == stage.group
        assert trigger["topic"] == BASE.for_record(stage.input_record).name
        assert scaled[name]["spec"]["minReplicaCount"] == stage.sizing.min_replicas
        assert scaled[name]["spec"]["maxReplicaCount"] == stage.sizing.max_replicas
        gpus = container["resources"]["limits"].get("nvidia.com/gpu", 0)
        assert gpus == (1 if stage.device.value == "gpu" else 0)
